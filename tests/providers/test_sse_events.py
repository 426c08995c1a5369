"""The lean SSE reader and the read-ahead that feeds it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

import orjson
import pytest

from symposia.aio import read_ahead
from symposia.providers.sse_events import sse_batches

STREAM = (
    b": keep-alive comment\n\n"
    b'data: {"n":1}\n\n'
    b'event: message_delta\ndata: {"n":2}\n\n'
    b'data:{"n":3}\r\n\r\n'
    b'data: {"text":\ndata: "two lines"}\n\n'
    b"data: [DONE]\n\n"
    b'data: {"after":"done"}\n\n'
)
EXPECTED = [
    (b"", {"n": 1}),
    (b"message_delta", {"n": 2}),
    (b"", {"n": 3}),
    (b"", {"text": "two lines"}),
]


async def _chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _events(parts: Iterable[bytes]) -> list[tuple[bytes, Any]]:
    return [pair async for batch in sse_batches(_chunks(parts)) for pair in batch]


async def test_one_chunk_gives_every_event_in_one_batch_and_stops_at_done() -> None:
    batches = [batch async for batch in sse_batches(_chunks([STREAM]))]
    assert batches == [EXPECTED]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
async def test_events_split_anywhere_across_reads(cut: int) -> None:
    assert await _events([STREAM[:cut], STREAM[cut:]]) == EXPECTED


async def test_byte_at_a_time() -> None:
    assert await _events(STREAM[i : i + 1] for i in range(len(STREAM))) == EXPECTED


async def test_invalid_json_raises() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        await _events([b'data: {"n":1}\n\ndata: {not json\n\n'])


async def _paced(parts: list[list[bytes]], gate: asyncio.Event) -> AsyncIterator[bytes]:
    """Yields each group's chunks back to back, then waits for `gate` before the next."""
    for group in parts:
        for part in group:
            yield part
        await gate.wait()
        gate.clear()


async def test_read_ahead_joins_what_arrived_since_the_last_step() -> None:
    gate = asyncio.Event()
    steps: list[bytes] = []
    async with aclosing(read_ahead(_paced([[b"a", b"b", b"c"], [b"d"], [b"e", b"f"]], gate))) as it:
        async for data in it:
            steps.append(data)
            gate.set()
    assert steps == [b"abc", b"d", b"ef"]


async def test_read_ahead_hands_over_data_before_the_error() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"kept"
        raise ConnectionResetError("cut")

    received: list[bytes] = []
    with pytest.raises(ConnectionResetError):
        async for data in read_ahead(failing()):
            received.append(data)
    assert received == [b"kept"]


async def test_closing_read_ahead_stops_the_reader() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    async with aclosing(read_ahead(endless())) as it:
        async for _ in it:
            break
    assert closed.is_set()  # the reader was cancelled and finished before aclose returned


async def test_done_tells_a_stream_ended_by_done_from_one_cut_short() -> None:
    whole = sse_batches(_chunks([STREAM]))
    assert [pair async for batch in whole for pair in batch] == EXPECTED
    assert whole.done
    cut = sse_batches(_chunks([STREAM[: STREAM.index(b"data: [DONE]")]]))
    assert [pair async for batch in cut for pair in batch] == EXPECTED
    assert not cut.done

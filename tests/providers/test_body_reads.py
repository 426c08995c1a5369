"""`available_chunks` reads an aiohttp body as `iter_any()` does, a step per wake-up."""

from __future__ import annotations

import asyncio
from unittest import mock

import aiohttp
import pytest

from symposia.providers.body_reads import available_chunks


def _reader(chunks: list[bytes], *, limit: int = 2**16) -> aiohttp.StreamReader:
    """A reader fed as aiohttp's parser feeds a chunked body: one HTTP chunk each."""
    protocol = mock.Mock(_reading_paused=False)
    reader = aiohttp.StreamReader(protocol, limit, loop=asyncio.get_running_loop())
    reader.begin_http_chunk_receiving()
    for chunk in chunks:
        reader.begin_http_chunk_receiving()
        reader.feed_data(chunk)
        reader.end_http_chunk_receiving()
    return reader


async def _all(reader: aiohttp.StreamReader) -> list[bytes]:
    return [chunk async for chunk in available_chunks(reader)]


@pytest.mark.asyncio
async def test_all_that_is_buffered_comes_as_one_step_with_one_resume() -> None:
    chunks = [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    reader, twin = _reader(chunks), _reader(chunks)
    reader.feed_eof()
    twin.feed_eof()
    for each in (reader, twin):
        each._protocol.reset_mock()  # type: ignore[attr-defined]
    assert await _all(reader) == [b"".join(chunks)]
    assert [chunk async for chunk in twin.iter_any()] == [b"".join(chunks)]
    # The state aiohttp keeps is as its own read leaves it.
    for name in ("_size", "_cursor", "_buffer_offset", "_http_chunk_splits", "_eof"):
        assert getattr(reader, name) == getattr(twin, name), name
    assert reader._protocol.resume_reading.call_count == 1  # type: ignore[attr-defined]
    assert twin._protocol.resume_reading.call_count == 3  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_later_data_waits_for_the_next_step_and_the_end_ends_it() -> None:
    reader = _reader([b"a"])
    steps = available_chunks(reader)
    assert await anext(steps) == b"a"
    pending = asyncio.ensure_future(anext(steps))
    await asyncio.sleep(0)
    assert not pending.done()
    reader.begin_http_chunk_receiving()
    reader.feed_data(b"b")
    reader.end_http_chunk_receiving()
    assert await pending == b"b"
    reader.feed_eof()
    with pytest.raises(StopAsyncIteration):
        await anext(steps)


@pytest.mark.asyncio
async def test_a_partly_read_buffer_and_a_failure_read_as_aiohttp_reads_them() -> None:
    reader = _reader([b"abc", b"def"])
    assert await reader.read(2) == b"ab"  # leaves an offset into the first chunk
    steps = available_chunks(reader)
    assert await anext(steps) == b"cdef"
    assert reader._size == 0
    reader.set_exception(aiohttp.ClientPayloadError("cut"))
    with pytest.raises(aiohttp.ClientPayloadError):
        await anext(steps)


@pytest.mark.asyncio
async def test_another_reader_is_read_by_iter_any() -> None:
    empty = aiohttp.streams.EmptyStreamReader()
    assert await _all(empty) == []


async def test_the_data_before_a_failure_comes_before_the_failure() -> None:
    reader = _reader([b"data: 1\n\n"])
    reader.set_exception(aiohttp.ClientPayloadError("cut"))
    with pytest.raises(aiohttp.ClientPayloadError):
        await reader.readany()  # aiohttp's own read loses the data
    steps = available_chunks(_failed_after(b"data: 1\n\n"))
    assert await anext(steps) == b"data: 1\n\n"
    with pytest.raises(aiohttp.ClientPayloadError):
        await anext(steps)


def _failed_after(data: bytes) -> aiohttp.StreamReader:
    reader = _reader([data])
    reader.set_exception(aiohttp.ClientPayloadError("cut"))
    return reader

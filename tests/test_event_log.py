from __future__ import annotations

import asyncio

import pytest

from symposia.domain.events import Event
from symposia.events.log import BATCH_EVENTS, ResumeGoneError, StreamNotFoundError
from symposia.events.memory import InMemoryEventLog


async def _drain(log: InMemoryEventLog, after: int = 0) -> list[Event]:
    return [event async for event in log.subscribe("s", after)]


async def test_seq_is_gap_free_and_read_resumes_after_a_position() -> None:
    log = InMemoryEventLog()
    await log.create("s")
    for index in range(5):
        await log.append("s", "token", {"i": index})
    assert [e.seq for e in await log.read("s")] == [1, 2, 3, 4, 5]
    assert [e.data["i"] for e in await log.read("s", 3)] == [3, 4]
    assert await log.read("s", 5) == []
    assert await log.last_seq("s") == 5


async def test_subscribers_replay_then_follow_until_closed() -> None:
    log = InMemoryEventLog()
    await log.create("s")
    await log.append("s", "run_status", {"status": "running"})
    first = asyncio.create_task(_drain(log))
    late = asyncio.create_task(_drain(log, after=1))
    await asyncio.sleep(0)
    for index in range(3):
        await log.append("s", "token", {"i": index})
        await asyncio.sleep(0)
    await log.append("s", "done", {})
    await log.close("s")
    one, two = await asyncio.wait_for(asyncio.gather(first, late), 2)
    assert [e.seq for e in one] == [1, 2, 3, 4, 5]
    assert [e.seq for e in two] == [2, 3, 4, 5]


async def test_appends_between_wakeups_are_not_missed() -> None:
    log = InMemoryEventLog()
    await log.create("s")
    reader = asyncio.create_task(_drain(log))
    await asyncio.sleep(0)
    for index in range(100):  # many appends with no yield in between
        await log.append("s", "token", {"i": index})
    await log.close("s")
    events = await asyncio.wait_for(reader, 2)
    assert [e.data["i"] for e in events] == list(range(100))


async def test_retention_is_bounded_and_a_lost_position_says_so() -> None:
    log = InMemoryEventLog(max_events=100)
    await log.create("s")
    for index in range(250):
        await log.append("s", "token", {"i": index})
    retained = await log.read("s", 200)
    assert [e.seq for e in retained] == list(range(201, 251))
    assert len(log._streams["s"].events) <= 100
    with pytest.raises(ResumeGoneError):
        await log.read("s", 10)


async def test_unknown_stream_and_append_after_close() -> None:
    log = InMemoryEventLog()
    with pytest.raises(StreamNotFoundError):
        await log.read("nope")
    await log.create("s")
    await log.close("s")
    with pytest.raises(RuntimeError):
        await log.append("s", "token", {})


async def test_closed_streams_expire_after_retention() -> None:
    log = InMemoryEventLog(retention_seconds=0)
    await log.create("old")
    await log.close("old")
    await asyncio.sleep(0.01)
    await log.create("new")
    assert not await log.exists("old")
    assert await log.exists("new")


async def _long_stream(events: int) -> InMemoryEventLog:
    log = InMemoryEventLog()
    await log.create("s")
    for index in range(events):
        await log.append("s", "token", {"i": index})
    await log.close("s")
    return log


async def test_a_replay_comes_in_bounded_batches_with_every_seq_once() -> None:
    log = await _long_stream(1000)
    batches = [batch async for batch in log.batches("s", 10, limit=300)]
    assert [len(batch) for batch in batches] == [300, 300, 300, 90]
    assert [event.seq for batch in batches for event in batch] == list(range(11, 1001))


async def test_a_long_replay_gives_the_loop_a_turn_between_batches() -> None:
    """Everything is there already, so only the log itself can let others run."""
    log = await _long_stream(10_000)
    read = 0
    seen_at: list[int] = []

    async def another_request() -> None:
        seen_at.append(read)

    other = asyncio.create_task(another_request())  # ready: it waits only for a turn
    async for _ in log.subscribe("s"):
        read += 1
    await other
    assert seen_at == [BATCH_EVENTS]  # after the first batch, not after all 10,000 events


def test_an_event_keeps_its_encoding_and_compares_without_it() -> None:
    event = Event(1, "token", {"delta": "x"})
    calls: list[int] = []

    def encode(e: Event) -> bytes:
        calls.append(e.seq)
        return b"frame"

    assert event.encoded(encode) == event.encoded(encode) == b"frame"
    assert calls == [1]
    assert event == Event(1, "token", {"delta": "x"})

"""Readers of a stream are woken a chunk at a time, so its writer never waits behind them."""

from __future__ import annotations

import asyncio

from symposia.events.memory import InMemoryEventLog
from symposia.events.wakeup import WAKE_CHUNK, Wakeup


async def test_notify_wakes_every_reader_a_chunk_per_turn_of_the_loop() -> None:
    wakeup = Wakeup()
    woken: list[int] = []

    async def reader(index: int) -> None:
        await wakeup.wait(wakeup.count)
        woken.append(index)

    readers = [asyncio.create_task(reader(i)) for i in range(WAKE_CHUNK * 3)]
    await asyncio.sleep(0)  # all of them waiting
    wakeup.notify()
    assert woken == []  # notify itself wakes nobody: the writer goes on at once
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert 0 < len(woken) <= WAKE_CHUNK  # the others wait for later turns
    await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert sorted(woken) == list(range(WAKE_CHUNK * 3))


async def test_a_notify_between_looking_and_waiting_is_not_missed() -> None:
    wakeup = Wakeup()
    seen = wakeup.count
    wakeup.notify()  # came after the reader looked, before it waited
    await asyncio.wait_for(wakeup.wait(seen), 1)


async def test_a_reader_that_left_is_skipped_and_the_rest_are_woken() -> None:
    wakeup = Wakeup()
    gone = asyncio.create_task(wakeup.wait(wakeup.count))
    stays = asyncio.create_task(wakeup.wait(wakeup.count))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    wakeup.notify()
    await asyncio.wait_for(stays, 1)
    assert gone.cancelled()


async def test_a_writer_is_not_held_back_by_thousands_of_readers() -> None:
    """The writer's next append comes after one chunk of readers has run, not all of them:
    readers woken later get what came meanwhile in one batch."""
    log = InMemoryEventLog()
    await log.create("s")
    batches: list[int] = []

    async def reader() -> None:
        async for batch in log.batches("s"):
            batches.append(len(batch))

    readers = [asyncio.create_task(reader()) for _ in range(WAKE_CHUNK * 20)]
    await asyncio.sleep(0)
    for _ in range(5):
        await log.append("s", "token", {"delta": "x"})
        await asyncio.sleep(0)  # one turn of the loop between two appends
    await log.close("s")
    await asyncio.wait_for(asyncio.gather(*readers), 10)
    assert sum(batches) == 5 * len(readers)
    # Woken all at once, each reader would have run between two appends: 5 batches each.
    assert len(batches) < 2 * len(readers)

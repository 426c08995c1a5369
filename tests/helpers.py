"""Waiting on a run from inside a test, through its event log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from symposia.container import Container
from symposia.domain.events import Event


async def wait_for_event(
    container: Container, run_id: str, predicate: Callable[[Event], bool], timeout: float = 10
) -> Event:
    async def find() -> Event:
        async for event in container.log.subscribe(run_id):
            if predicate(event):
                return event
        raise AssertionError("stream ended before the expected event")

    return await asyncio.wait_for(find(), timeout)


async def wait_done(container: Container, run_id: str, timeout: float = 20) -> list[Event]:
    async def drain() -> list[Event]:
        return [event async for event in container.log.subscribe(run_id)]

    return await asyncio.wait_for(drain(), timeout)


def tokens_of(events: list[Event], turn: int) -> str:
    return "".join(e.data["delta"] for e in events if e.type == "token" and e.data["turn"] == turn)

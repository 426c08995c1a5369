"""Waiting from inside a test: on a run, through its event log, or on any condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

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


async def eventually(condition: Callable[[], Any], within: float = 1.0) -> None:
    """Wait until `condition()` is true, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)

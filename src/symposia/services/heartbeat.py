"""A heartbeat: every `every` seconds, renew the leases this process holds, then sweep for
the lapsed or released leases of others.

Runs and conversation replies each have one (`RunService.renew`/`sweep`,
`ReplyLeases.renew`/`sweep`). It beats at start-up too, so a single process restarted
goes on with what it had. A lease that is live is never touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from symposia.aio import stopped_within
from symposia.storage.failures import summary

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Heartbeat:
    name: str
    every: float
    renew: Callable[[], Awaitable[int]]
    sweep: Callable[[], Awaitable[int]]
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def start(self) -> None:
        """Sweep once (so start-up reports what it found), then beat in the background."""
        await self.sweep()
        self._task = asyncio.create_task(self._beat(), name=f"{self.name}-heartbeat")

    async def _beat(self) -> None:
        while not await stopped_within(self._stop, self.every):
            try:
                await self.renew()
                await self.sweep()
            except Exception as exc:  # a database blip must not stop the heartbeat for good
                logger.warning("%s heartbeat failed: %s", self.name, summary(exc))

    async def close(self) -> None:
        """Stop beating; a beat under way finishes first (cancelling it mid-query would
        leave the driver's thread answering a loop that is gone)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

"""Run leases across servers sharing one database: renewed here, taken over when lapsed.

Every `every` seconds this process renews the leases of the runs it has a task for (one
UPDATE), then sweeps: the runs whose lease lapsed (their process died, or lost their task)
or was released (their process left) are taken over or marked `interrupted` (see
`RunService.sweep`). It sweeps at start-up too, so a single process restarted goes on with
the runs it had. A run whose lease is live is never touched.
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
class RunLiveness:
    every: float
    renew: Callable[[], Awaitable[int]]
    sweep: Callable[[], Awaitable[int]]
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def start(self) -> None:
        """Sweep once (so start-up reports what it found), then beat in the background."""
        await self.sweep()
        self._task = asyncio.create_task(self._beat(), name="run-heartbeat")

    async def _beat(self) -> None:
        while not await stopped_within(self._stop, self.every):
            try:
                await self.renew()
                await self.sweep()
            except Exception as exc:  # a database blip must not stop the heartbeat for good
                logger.warning("run heartbeat failed: %s", summary(exc))

    async def close(self) -> None:
        """Stop beating; a beat under way finishes first (cancelling it mid-query would
        leave the driver's thread answering a loop that is gone)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

"""Run liveness across servers sharing one database, until leases replace it.

This process renews the heartbeat of its live runs every `every` seconds, and marks
`interrupted` the unfinished runs of other processes whose heartbeat is older than
`stale_after` (their process died): at start-up, and on every beat after, so a run left
by a process killed a moment ago is marked once its heartbeat has gone stale. A run
whose process may still be alive is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from symposia.storage.failures import summary
from symposia.storage.repositories import RunRepository

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunLiveness:
    runs: RunRepository
    every: float
    stale_after: float
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def start(self) -> None:
        """Sweep once (so start-up reports what it found), then beat in the background."""
        await self.sweep()
        self._task = asyncio.create_task(self._beat(), name="run-heartbeat")

    async def sweep(self) -> int:
        interrupted = await self.runs.mark_interrupted(self.stale_after)
        if interrupted:
            logger.warning("marked %d runs of stopped servers as interrupted", interrupted)
        return interrupted

    async def _beat(self) -> None:
        while not await self._stopped_within(self.every):
            try:
                await self.runs.heartbeat()
                await self.sweep()
            except Exception as exc:  # a database blip must not stop the heartbeat for good
                logger.warning("run heartbeat failed: %s", summary(exc))

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def close(self) -> None:
        """Stop beating; a beat under way finishes first (cancelling it mid-query would
        leave the driver's thread answering a loop that is gone)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

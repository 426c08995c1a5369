"""Who may watch a run's stream, and where it comes from: the live log, or, once the log
no longer has it (a restart, the retention window), the stream rebuilt from storage with
the ids it had live.

A thousand viewers may join at once, so joining is cheap: no query while the run is live
here or its owner was seen lately, one small one otherwise, never the whole run; the
transcript is read only when the log is gone, once for all who join meanwhile, and a
finished run's rebuilt stream is kept a while.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from symposia.errors import NotFoundError
from symposia.events.log import EventLog
from symposia.events.replay import StoredStream, rebuild
from symposia.services.run_tasks import RunTasks
from symposia.storage.repositories import RunRepository

LIVE_POLL_SECONDS = 0.2
LIVE_WAIT_MARGIN_SECONDS = 5.0
KNOWN_OWNERS_MAX = 4096  # owners of runs no longer live here, remembered for joins
STORED_STREAMS_MAX = 128  # finished runs' streams rebuilt from storage, kept for joins
_UNKNOWN = object()


@dataclass(slots=True)
class RunStreams:
    runs: RunRepository
    log: EventLog
    tasks: RunTasks
    lease_seconds: float = 15.0
    # A run's owner never changes, so what was once read stays true; oldest forgotten first.
    _known_owners: dict[str, str | None] = field(default_factory=dict)
    _replays: dict[str, asyncio.Task[StoredStream]] = field(default_factory=dict)
    # A finished run's stream never changes: rebuilt once, kept for who joins next.
    _stored: dict[str, StoredStream] = field(default_factory=dict)

    async def open(self, run_id: str, *, owner: str | None) -> StoredStream | None:
        """Let `owner` watch the run's event stream; 404 unless the run is theirs. None when
        the live log has the stream; otherwise the stream rebuilt from storage."""
        known = self.tasks.owners.get(run_id, self._known_owners.get(run_id, _UNKNOWN))
        if known is _UNKNOWN:
            found = await self.runs.owner_of(run_id)
            if found is None:
                raise NotFoundError(f"run {run_id!r} not found")
            known = found[0]
            self.remember_owner(run_id, found[0])
        if owner is not None and known != owner:
            raise NotFoundError(f"run {run_id!r} not found")
        if await self.log.exists(run_id):
            return None
        stored = self._stored.get(run_id)
        if stored is None:
            stored = await self._replay_once(run_id)
            if not stored.finished and await self._live_soon(run_id):
                return None
        return stored

    def remember_owner(self, run_id: str, owner: str | None) -> None:
        self._known_owners[run_id] = owner
        if len(self._known_owners) > KNOWN_OWNERS_MAX:
            del self._known_owners[next(iter(self._known_owners))]

    def forget(self, run_id: str) -> None:
        """The run is gone (deleted): nothing kept of it may answer a join."""
        self._known_owners.pop(run_id, None)
        self._stored.pop(run_id, None)

    async def _live_soon(self, run_id: str) -> bool:
        """Whether an unfinished run whose stream is not here gets one soon: a run found
        going on at start-up (its stream died with the process) is taken over once its
        lease lapses, and a viewer who came back meanwhile follows it then, rather than
        getting the stored part only."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease_seconds + LIVE_WAIT_MARGIN_SECONDS
        while loop.time() < deadline:
            await asyncio.sleep(LIVE_POLL_SECONDS)
            if await self.log.exists(run_id):
                return True
            found = await self.runs.owner_of(run_id)
            if found is None or found[1].finished:
                return False
        return False

    async def _replay_once(self, run_id: str) -> StoredStream:
        """Rebuild the stream from storage in one task that every joiner waits on; one who
        leaves meanwhile does not cancel it for the others."""
        task = self._replays.get(run_id)
        if task is None:
            task = asyncio.create_task(self._replay(run_id), name=f"replay-{run_id}")
            self._replays[run_id] = task
            task.add_done_callback(functools.partial(self._replayed, run_id))
        return await asyncio.shield(task)

    async def _replay(self, run_id: str) -> StoredStream:
        run = await self.runs.get(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id!r} not found")
        stored = rebuild(run)
        if stored.finished:
            self._stored[run_id] = stored
            if len(self._stored) > STORED_STREAMS_MAX:
                del self._stored[next(iter(self._stored))]
        return stored

    async def settle(self, grace: float) -> None:
        """Wait for the rebuilds under way: one whose joiners all left still reads storage,
        and must end before the engine is disposed and the loop closed (the driver's
        thread would answer a closed loop)."""
        if self._replays:
            await asyncio.wait(set(self._replays.values()), timeout=grace)

    def _replayed(self, run_id: str, task: asyncio.Task[StoredStream]) -> None:
        self._replays.pop(run_id, None)
        if not task.cancelled():
            task.exception()  # each waiter got it; marked retrieved for the ones who left

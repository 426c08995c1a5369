"""Waking a stream's readers without holding up its writer.

An `asyncio.Event` set wakes every waiter in the same turn of the event loop: with
thousands of viewers, the writer's next step (a turn's next token) waited behind all of
their socket writes, so viewers slowed the run itself. Here `notify` costs the writer the
same whatever the audience, and the readers are woken `WAKE_CHUNK` at a time, one chunk
per turn of the loop, so the writer (and every other request) runs between chunks. A
reader woken late takes everything that came meanwhile in one batch: a large audience
gets coalesced events, the writer is never throttled.
"""

from __future__ import annotations

import asyncio
from collections import deque

# Readers woken per turn of the event loop: at 10-30 us each, a millisecond or two.
WAKE_CHUNK = 64


class Wakeup:
    """Readers wait for the next `notify` after the one they saw (`count`): a reader that
    reads `count`, looks for events, and finds none, misses none that came since."""

    __slots__ = ("_pending", "_prune_at", "_pumping", "_waiters", "count")

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._pending: deque[asyncio.Future[None]] = deque()
        self._pumping = False
        self._prune_at = 64

    def notify(self) -> None:
        """Wake every reader waiting now, soon and a chunk at a time; never waits."""
        self.count += 1
        if not self._waiters:
            return
        self._pending.extend(self._waiters)
        self._waiters = []
        if not self._pumping:
            self._pumping = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        pending = self._pending
        for _ in range(min(WAKE_CHUNK, len(pending))):
            waiter = pending.popleft()
            if not waiter.done():  # a reader cancelled while waiting (its client left)
                waiter.set_result(None)
        if pending:
            asyncio.get_running_loop().call_soon(self._pump)  # after the ones just woken
        else:
            self._pumping = False

    async def wait(self, seen: int) -> None:
        """Until a `notify` after the one numbered `seen` (at once if one came already)."""
        if self.count != seen:
            return
        if len(self._waiters) >= self._prune_at:  # readers that left an idle stream
            self._waiters = [w for w in self._waiters if not w.done()]
            self._prune_at = max(64, 2 * len(self._waiters))
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

"""An exact moving-window rate limit in this process's memory, with no thread.

`limits`' memory storage starts a `threading.Timer` thread to expire old hits whenever
its last one has finished: under load a new thread every 10 ms, each start waited for on
the event loop, and the thread's Python work contending for the GIL with every request
(and its window list is grown at the front, copied on expiry). Here each key keeps a
deque of its hit times: a hit drops the expired ones from the left and appends, so the
cost is constant per request; keys idle for a whole window are swept once a minute.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits import WindowStats

SWEEP_EVERY_SECONDS = 60.0


class MovingWindow:
    """At most `amount` hits per key within any `seconds`-long window."""

    __slots__ = ("_clock", "_hits", "_next_sweep")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # key -> (hit times, oldest first; the window's length)
        self._hits: dict[str, tuple[deque[float], float]] = {}
        self._next_sweep = clock() + SWEEP_EVERY_SECONDS

    def hit(self, key: str, amount: int, seconds: float) -> bool:
        """Count one hit of `key` if the window has room: whether it had."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        entry = self._hits.get(key)
        if entry is None:
            entry = self._hits[key] = (deque(), seconds)
        hits = entry[0]
        start = now - seconds
        while hits and hits[0] <= start:
            hits.popleft()
        if len(hits) >= amount:
            return False
        hits.append(now)
        return True

    def test(self, key: str, amount: int, seconds: float) -> bool:
        """Whether a hit of `key` would be counted now; counts nothing."""
        entry = self._hits.get(key)
        if entry is None:
            return amount > 0
        start = self._clock() - seconds
        return sum(1 for t in entry[0] if t > start) < amount

    def stats(self, key: str, amount: int, seconds: float) -> WindowStats:
        """When the oldest hit in the window leaves it (epoch seconds), and the room left."""
        now = self._clock()
        entry = self._hits.get(key)
        hits = [t for t in entry[0] if t > now - seconds] if entry is not None else []
        reset = (hits[0] if hits else now) + seconds
        return WindowStats(reset, max(0, amount - len(hits)))

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_EVERY_SECONDS
        idle = [
            k for k, (hits, seconds) in self._hits.items() if not hits or hits[-1] <= now - seconds
        ]
        for key in idle:
            del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)

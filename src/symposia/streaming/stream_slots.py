"""Open streams per principal: one key cannot hold thousands of SSE and WebSocket streams.

Each following stream (`/api/stream/{id}`, a conversation's `/stream`, `/api/chat/stream`,
a WebSocket) takes a slot of its principal (an unauthenticated caller: its client address)
for as long as it is open; past MAX_STREAMS_PER_PRINCIPAL the next one is a 429. Counted
per process, in memory: a dict lookup per stream opened and closed.
"""

from __future__ import annotations

from collections.abc import Callable

from symposia.errors import RateLimitedError

Release = Callable[[], None]
RETRY_AFTER_SECONDS = 5


class TooManyStreamsError(RateLimitedError):
    code = "too_many_streams"


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open_for(self, key: str) -> int:
        return self._open.get(key, 0)

    def take(self, key: str) -> Release:
        """A slot of `key`'s, and the function that gives it back (once, however often
        it is called); 429 when all of them are taken."""
        count = self._open.get(key, 0)
        if count >= self.limit:
            raise TooManyStreamsError(
                f"{self.limit} streams are open for this caller already "
                "(MAX_STREAMS_PER_PRINCIPAL): close one first",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._open[key] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open.get(key, 1) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)

        return release

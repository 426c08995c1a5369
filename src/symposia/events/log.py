"""The event log interface: append-only streams of typed events, replayed and tailed.

Producers (turns) `append`; consumers (SSE handlers) `subscribe` from a position and get
everything after it, then follow new events until the stream is closed. A consumer never
holds a queue of its own, so a slow reader costs a position, not memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from symposia.domain.events import Event, EventType
from symposia.errors import SymposiaError


class StreamNotFoundError(SymposiaError):
    status_code = 404
    code = "stream_not_found"


class ResumeGoneError(SymposiaError):
    """The position asked for is older than what the log still retains."""

    status_code = 410
    code = "resume_position_gone"


class EventLog(Protocol):
    async def create(self, stream_id: str) -> None: ...

    async def append(self, stream_id: str, type: EventType, data: dict[str, Any]) -> Event: ...

    async def close(self, stream_id: str) -> None:
        """No more events will come; subscribers end after the last one."""
        ...

    async def read(self, stream_id: str, after_seq: int = 0) -> list[Event]: ...

    def subscribe(self, stream_id: str, after_seq: int = 0) -> AsyncIterator[Event]: ...

    async def last_seq(self, stream_id: str) -> int: ...

    async def exists(self, stream_id: str) -> bool: ...

"""The event log interface: append-only streams of typed events, replayed and tailed.

Producers (turns) `append`; consumers (SSE handlers) `subscribe` from a position and get
everything after it, then follow new events until the stream is closed. A consumer never
holds a queue of its own, so a slow reader costs a position, not memory. `batches` hands
over what is already there a bounded batch at a time, giving the event loop a turn between
batches, so replaying a long stream is fair to every other request and stops when its
reader does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from symposia.domain.events import Event, EventType
from symposia.errors import FencedOutError, SymposiaError

# Events handed over at once: enough to coalesce a replay into few socket writes, few enough
# that one reader's batch holds the event loop for well under a millisecond.
BATCH_EVENTS = 256


class StreamNotFoundError(SymposiaError):
    status_code = 404
    code = "stream_not_found"


class ResumeGoneError(SymposiaError):
    """The position asked for is older than what the log still retains."""

    status_code = 410
    code = "resume_position_gone"


def fenced_out(stream_id: str, epoch: int, current: int | str) -> FencedOutError:
    return FencedOutError(f"stream {stream_id} is fenced at epoch {current}, not {epoch}")


class Appender(Protocol):
    """What writes events: an event log, or a `SerialAppender` in front of one."""

    async def append(
        self, stream_id: str, type: EventType, data: dict[str, Any], epoch: int | None = None
    ) -> Event: ...


class SerialAppender:
    """Several writers of one stream (the turns of a round, in parallel), one append at a
    time: inside `lock`, a writer may read the last id, act on "the next id", and append,
    with no other writer's event in between."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.lock = asyncio.Lock()

    async def append(
        self, stream_id: str, type: EventType, data: dict[str, Any], epoch: int | None = None
    ) -> Event:
        async with self.lock:
            return await self.log.append(stream_id, type, data, epoch)


class EventLog(Protocol):
    async def create(self, stream_id: str) -> None: ...

    async def restore(self, stream_id: str, events: Sequence[Event]) -> None:
        """Create the stream holding `events` (their ids as given, ascending; a `snapshot`
        may stand for several ids), to go on numbering after the last: a run's stream
        rebuilt from storage when the log that had it is gone. Nothing if it exists."""
        ...

    async def append(
        self, stream_id: str, type: EventType, data: dict[str, Any], epoch: int | None = None
    ) -> Event:
        """With `epoch` (the writer's lease), refused with `FencedOutError`, appending
        nothing, when the stream was fenced at a higher epoch since."""
        ...

    async def fence(self, stream_id: str, epoch: int) -> None:
        """Record `epoch` as the stream's current one: appends at a lower epoch are refused
        from now on. Refused itself (`FencedOutError`) when a higher epoch is recorded."""
        ...

    async def close(self, stream_id: str) -> None:
        """No more events will come; subscribers end after the last one."""
        ...

    def stop_readers(self) -> None:
        """Readers in this process end after what is there now, instead of waiting for more:
        the process is leaving, and its viewers reconnect elsewhere with `Last-Event-ID`."""
        ...

    async def read(self, stream_id: str, after_seq: int = 0) -> list[Event]: ...

    def subscribe(self, stream_id: str, after_seq: int = 0) -> AsyncIterator[Event]: ...

    def batches(
        self, stream_id: str, after_seq: int = 0, limit: int = BATCH_EVENTS
    ) -> AsyncIterator[Sequence[Event]]:
        """Like `subscribe`, but up to `limit` events at a time: all that are already there
        (a replay), or what came while the reader waited (live)."""
        ...

    async def last_seq(self, stream_id: str) -> int: ...

    async def exists(self, stream_id: str) -> bool: ...


class EventLogUnreachableError(Exception):
    """The Redis event log is selected but its server cannot be reached at start-up."""

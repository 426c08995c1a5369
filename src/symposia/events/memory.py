"""In-process event log: the embedded default for a single server process."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from symposia.domain.event_read import ranges_of
from symposia.domain.events import Event, EventType
from symposia.events.log import BATCH_EVENTS, ResumeGoneError, StreamNotFoundError, fenced_out
from symposia.events.wakeup import Wakeup


class _Stream:
    __slots__ = (
        "closed",
        "closed_at",
        "dense",
        "dropped",
        "epoch",
        "events",
        "max_events",
        "next_seq",
        "wakeup",
    )

    def __init__(self, max_events: int) -> None:
        self.events: list[Event] = []
        self.max_events = max_events
        self.next_seq = 1
        # The highest id no longer kept: a reader after a lower id would miss it.
        self.dropped = 0
        self.closed = False
        self.closed_at = 0.0
        self.epoch = 0
        self.wakeup = Wakeup()
        # One event per id, so a position is an index; a restored stream may have gaps
        # (a `snapshot` standing for several ids), and is searched instead.
        self.dense = True

    def notify(self) -> None:
        """Wake every waiting subscriber, a chunk at a time after this returns: the writer
        never waits for its readers (see `Wakeup`)."""
        self.wakeup.notify()

    def after(self, seq: int, limit: int | None = None) -> list[Event]:
        """Events after `seq`, at most `limit` of them: a copy of that many, not of the rest."""
        if seq < self.dropped:
            raise ResumeGoneError(
                f"events after {seq} are no longer retained; the oldest is {self.dropped + 1}"
            )
        if not self.events:
            return []
        if self.dense:
            start = max(0, seq + 1 - self.events[0].seq)
        else:
            start = bisect.bisect_right(self.events, seq, key=_seq_of)
        return self.events[start : None if limit is None else start + limit]

    def add(self, event: Event) -> None:
        self.events.append(event)
        if len(self.events) > self.max_events:
            # Trim a tenth at a time so appends stay amortised O(1).
            drop = max(1, self.max_events // 10)
            self.dropped = self.events[drop - 1].seq
            del self.events[:drop]
            self.dense = (
                self.dense or self.events[-1].seq - self.events[0].seq == len(self.events) - 1
            )


def _seq_of(event: Event) -> int:
    return event.seq


class InMemoryEventLog:
    """Bounded per stream (`max_events`), and closed streams expire after `retention`."""

    def __init__(self, max_events: int = 100_000, retention_seconds: float = 3600.0) -> None:
        self._streams: dict[str, _Stream] = {}
        self._max_events = max_events
        self._retention = retention_seconds
        self._leaving = False

    async def start(self) -> None:
        """Nothing to reach: memory is always there."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def _get(self, stream_id: str) -> _Stream:
        try:
            return self._streams[stream_id]
        except KeyError:
            raise StreamNotFoundError(f"no stream {stream_id!r}") from None

    def _expire(self) -> None:
        deadline = time.monotonic() - self._retention
        expired = [key for key, s in self._streams.items() if s.closed and s.closed_at < deadline]
        for key in expired:
            del self._streams[key]

    async def create(self, stream_id: str) -> None:
        self._expire()
        self._streams.setdefault(stream_id, _Stream(self._max_events))

    async def restore(self, stream_id: str, events: Sequence[Event]) -> None:
        if stream_id in self._streams:
            return
        stream = _Stream(self._max_events)
        if events:
            stream.events = list(events)
            stream.next_seq = events[-1].seq + 1
            stream.dense = events[-1].seq - events[0].seq == len(events) - 1
            stream.dropped = min(ranges_of(events[0]))[0] - 1  # ids before it: none here
        self._streams[stream_id] = stream

    async def append(
        self, stream_id: str, type: EventType, data: dict[str, Any], epoch: int | None = None
    ) -> Event:
        stream = self._get(stream_id)
        if stream.closed:
            raise RuntimeError(f"stream {stream_id} is closed")
        if epoch is not None and epoch < stream.epoch:
            raise fenced_out(stream_id, epoch, stream.epoch)
        event = Event(stream.next_seq, type, data)
        stream.next_seq += 1
        stream.add(event)
        stream.notify()
        return event

    async def fence(self, stream_id: str, epoch: int) -> None:
        stream = self._get(stream_id)
        if epoch < stream.epoch:
            raise fenced_out(stream_id, epoch, stream.epoch)
        stream.epoch = epoch

    async def close(self, stream_id: str) -> None:
        stream = self._get(stream_id)
        if not stream.closed:
            stream.closed = True
            stream.closed_at = time.monotonic()
            stream.notify()

    def stop_readers(self) -> None:
        self._leaving = True
        for stream in self._streams.values():
            stream.notify()

    async def read(self, stream_id: str, after_seq: int = 0) -> list[Event]:
        return self._get(stream_id).after(after_seq)

    async def last_seq(self, stream_id: str) -> int:
        return self._get(stream_id).next_seq - 1

    async def exists(self, stream_id: str) -> bool:
        return stream_id in self._streams

    async def subscribe(self, stream_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        async for batch in self.batches(stream_id, after_seq):
            for event in batch:
                yield event

    async def batches(
        self, stream_id: str, after_seq: int = 0, limit: int = BATCH_EVENTS
    ) -> AsyncIterator[list[Event]]:
        """Nothing here waits when events are there already, and a socket write often does
        not either: without the turn given between batches, a replay of 80,000 events would
        hold the loop (no other request, not even the client's disconnect, is seen) until
        it had pushed them all."""
        stream = self._get(stream_id)
        position = after_seq
        while True:
            seen = stream.wakeup.count
            batch = stream.after(position, limit)
            if batch:
                yield batch
                position = batch[-1].seq
                if stream.next_seq - 1 > position:
                    await asyncio.sleep(0)  # more is there at once: let the others run first
                continue
            if stream.closed or self._leaving:
                return
            await stream.wakeup.wait(seen)

"""The viewers of a live stream, written to in one pass per batch of events.

With a task per viewer, each event woke every viewer's task, which went through its
generators, the ASGI middlewares' `send` wrappers and uvicorn's `send` to reach its
socket: 20 us a viewer, so the last of 10,000 viewers got an event 200 ms after the first,
and each waiting viewer kept two tasks and a chain of suspended generators.

Here a viewer that has caught up with the stream is handed to its stream's `Audience`:
one task (the pump) follows the log, encodes each batch once (the frame bytes and their
HTTP chunk framing, shared by every viewer at the same position) and writes it straight
to each viewer's transport, without awaiting anything per viewer. A viewer whose socket
buffer is over its high-water mark (a reader slower than the stream) is skipped and sent
back to its own task, which waits for its socket to drain and then takes everything that
came meanwhile from the log in one write (coalesced) before it rejoins: the pump, and the
run writing the log, never wait for a slow or a large audience. The pump gives the event
loop a turn every `PASS_CHUNK` viewers, so the run's next token is not held behind a pass.

Only the viewers of a connection whose body uvicorn frames itself in chunks (`Direct`)
are written to this way; any other (a test's in-process client, h11) keeps the per-viewer
path of `sse.EventStreamResponse`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Literal, Protocol

from symposia.domain.events import Event
from symposia.events.log import ResumeGoneError, StreamNotFoundError

# Viewers written to per turn of the event loop: under a millisecond at 3-16 us a write
# (the system call: on loopback it runs the reader's side of TCP too). At 256, a run
# watched by 10,000 took 2-3x its time alone on a busy machine (its every token waited
# for a chunk); at 64, 1.5-1.7x.
PASS_CHUNK = 64
# A pass longer than this is followed by a rest as long as itself: delivery then takes at
# most about half of the event loop, and what the run writes meanwhile leaves in one write
# per viewer (a large audience gets coalesced events; the run is not slowed).
REST_AFTER_SECONDS = 0.002
MAX_REST_SECONDS = 0.25
DIRECT_KEY = "symposia.direct"  # the scope extension holding the connection (a weakref)
PING = b": ping\n\n"  # an SSE comment: keeps proxies from closing an idle stream
PING_CHUNK = b"%x\r\n%b\r\n" % (len(PING), PING)  # framed as one HTTP/1.1 chunk
logger = logging.getLogger(__name__)

Outcome = Literal["end", "behind", "gone", "timeout"]
Encoder = Callable[[Event], bytes]


class Cycle(Protocol):
    """What a viewer needs of uvicorn's `RequestResponseCycle` (httptools)."""

    transport: asyncio.Transport
    disconnected: bool
    chunked_encoding: bool | None
    response_started: bool
    response_complete: bool
    flow: Any  # FlowControl: write_paused


class Direct(Protocol):
    """The connection a request came on (`connection_limits.GuardedHttpToolsProtocol`)."""

    cycle: Any
    on_lost: Callable[[], None] | None


def direct_cycle(scope: Mapping[str, Any]) -> tuple[Direct, Cycle] | None:
    """The connection and response of a request whose body may be written straight to its
    transport: uvicorn's httptools cycle, the head sent, the body chunked."""
    ref = scope.get("extensions", {}).get(DIRECT_KEY)
    connection = ref() if ref is not None else None
    if connection is None:
        return None
    cycle = connection.cycle
    if (
        cycle is None
        or cycle.scope is not scope
        or cycle.chunked_encoding is not True
        or not cycle.response_started
        or cycle.response_complete
        or cycle.disconnected
    ):
        return None
    return connection, cycle


def mark_direct(scope: MutableMapping[str, Any], connection: Direct) -> None:
    """Let the app write this request's body straight to `connection` (see `direct_cycle`);
    a weak reference, so the scope keeps no cycle of references alive."""
    scope.setdefault("extensions", {})[DIRECT_KEY] = weakref.ref(connection)


class Viewer:
    """One caught-up viewer: where it is, how its frames are encoded, its socket."""

    __slots__ = (
        "connection",
        "cycle",
        "encoder",
        "outcome",
        "paused_since",
        "position",
        "retry",
        "written",
    )

    def __init__(
        self, connection: Direct, cycle: Cycle, position: int, encoder: Encoder, retry: bytes
    ) -> None:
        self.connection = connection
        self.cycle = cycle
        self.position = position
        self.encoder = encoder
        self.retry = retry  # sent before its first frame (the `retry:` field), then b""
        self.outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.paused_since = 0.0
        self.written = 0.0  # loop time of its last write

    def finish(self, outcome: Outcome) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)
        if self.connection.on_lost == self.gone:
            self.connection.on_lost = None

    def gone(self) -> None:
        self.finish("gone")


class Audience:
    """A live stream's caught-up viewers and the pump that writes to them."""

    def __init__(
        self,
        batches: Callable[[int], AsyncIterator[Sequence[Event]]],
        position: int,
        heartbeat: float,
        send_timeout: float,
        on_end: Callable[[Audience], None],
    ) -> None:
        self.position = position  # the last id the pump has taken from the log
        self.viewers: list[Viewer] = []
        self._batches = batches
        self._heartbeat = heartbeat
        self._send_timeout = send_timeout
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._ended = False
        self._task = asyncio.create_task(self._pump())
        self._beat_handle = self._loop.call_later(self._tick, self._beat)

    @property
    def _tick(self) -> float:
        return min(self._heartbeat, self._send_timeout)

    def join(self, viewer: Viewer) -> None:
        """Take `viewer`, at a position at or past the pump's (`can_join`)."""
        viewer.written = self._loop.time()
        viewer.connection.on_lost = viewer.gone
        self.viewers.append(viewer)

    def can_join(self, position: int) -> bool:
        return self.position <= position and not self.ended

    @property
    def ended(self) -> bool:
        return self._ended

    async def _pump(self) -> None:
        outcome: Outcome = "behind"  # each viewer's own reading says what went wrong
        try:
            batches = self._batches(self.position)
            try:
                async for batch in batches:
                    first, last = batch[0].seq, batch[-1].seq
                    self.position = last
                    started = self._loop.time()
                    await self._write(batch, first, last)
                    took = self._loop.time() - started
                    if took > REST_AFTER_SECONDS:
                        await asyncio.sleep(min(took, MAX_REST_SECONDS))
                    if not self.viewers:
                        return  # nobody left: the next viewer starts a pump of its own
                outcome = "end"
            finally:
                await aclose(batches)
        except (ResumeGoneError, StreamNotFoundError):
            pass  # each viewer, reading on by itself, meets it and says so
        except Exception:  # the log failed (Redis): the viewers' own reads report it
            logger.warning("a stream's audience stopped; its viewers read on", exc_info=True)
        finally:
            self._end(outcome)

    def _end(self, outcome: Outcome) -> None:
        self._ended = True
        self._beat_handle.cancel()
        self._on_end(self)
        viewers, self.viewers = self.viewers, []
        for viewer in viewers:
            viewer.finish(outcome)

    async def _write(self, batch: Sequence[Event], first: int, last: int) -> None:
        chunks: dict[tuple[Encoder, int, bytes], bytes] = {}
        now = self._loop.time()
        viewers = self.viewers
        kept: list[Viewer] = []
        for index, viewer in enumerate(viewers):
            if index and not index % PASS_CHUNK:
                await asyncio.sleep(0)  # the run, and every other request, run here
                now = self._loop.time()
            if viewer.outcome.done():
                continue
            cycle = viewer.cycle
            if cycle.disconnected:
                viewer.finish("gone")
                continue
            if viewer.position >= last:
                kept.append(viewer)
                continue
            if viewer.position < first - 1 or cycle.flow.write_paused:
                viewer.finish("behind")  # its own task catches up once its socket drains
                continue
            key = (viewer.encoder, viewer.position, viewer.retry)
            chunk = chunks.get(key)
            if chunk is None:
                chunk = chunks[key] = _chunk(batch, viewer.position, viewer.encoder, viewer.retry)
            if chunk:
                cycle.transport.write(chunk)
                viewer.retry = b""
                viewer.written = now
            viewer.position = last
            kept.append(viewer)
        # Who joined during the pass's turns is at `last` already (it could not join sooner).
        self.viewers = kept + self.viewers[len(viewers) :]

    def _beat(self) -> None:
        """Pings to viewers idle for a heartbeat; a viewer whose socket has not drained for
        `send_timeout` (a reader that stopped reading) is dropped."""
        now = self._loop.time()
        kept: list[Viewer] = []
        for viewer in self.viewers:
            if viewer.outcome.done():
                continue
            cycle = viewer.cycle
            if cycle.disconnected:
                viewer.finish("gone")
                continue
            if cycle.flow.write_paused:
                if not viewer.paused_since:
                    viewer.paused_since = now
                elif now - viewer.paused_since >= self._send_timeout:
                    viewer.finish("timeout")
                    continue
            else:
                viewer.paused_since = 0.0
                if now - viewer.written >= self._heartbeat - self._tick / 10:
                    cycle.transport.write(PING_CHUNK)
                    viewer.written = now
            kept.append(viewer)
        self.viewers = kept
        self._beat_handle = self._loop.call_later(self._tick, self._beat)


async def aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator (a log's `batches`) at once, not when it is collected."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _chunk(batch: Sequence[Event], position: int, encoder: Encoder, retry: bytes) -> bytes:
    """The batch's events after `position`, encoded, as one HTTP/1.1 chunk (b"": none)."""
    events = batch if batch[0].seq > position else [e for e in batch if e.seq > position]
    wire = b"".join([event.encoded(encoder) for event in events])
    if not wire:
        return b""
    wire = retry + wire
    return b"%x\r\n%b\r\n" % (len(wire), wire)


class Audiences:
    """One `Audience` per live stream with viewers in this process."""

    def __init__(self, batches: Callable[[str, int], AsyncIterator[Sequence[Event]]]) -> None:
        self._batches = batches
        self._audiences: dict[str, Audience] = {}

    def join(
        self, stream_id: str, viewer: Viewer, *, heartbeat: float, send_timeout: float
    ) -> bool:
        """Hand `viewer` to its stream's pump (started at its position when there is none);
        False when the pump is past it: the viewer reads on by itself, then tries again."""
        audience = self._audiences.get(stream_id)
        if audience is None or audience.ended:
            audience = Audience(
                lambda after: self._batches(stream_id, after),
                viewer.position,
                heartbeat,
                send_timeout,
                lambda ended: self._ended(stream_id, ended),
            )
            self._audiences[stream_id] = audience
        elif not audience.can_join(viewer.position):
            return False
        audience.join(viewer)
        return True

    def _ended(self, stream_id: str, audience: Audience) -> None:
        if self._audiences.get(stream_id) is audience:
            del self._audiences[stream_id]

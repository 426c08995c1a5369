"""Server-Sent Events: domain events become `id`/`event`/`data` frames, resumable by id.

Domain events know nothing of SSE; `encode` is the only place that does. Pings, client
disconnects and send timeouts (a reader that stopped reading) are `EventStreamResponse`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson
from sse_starlette import ServerSentEvent
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from symposia.domain.events import Event
from symposia.errors import BadRequestError
from symposia.events.log import EventLog, ResumeGoneError, StreamNotFoundError
from symposia.events.replay import StoredStream
from symposia.streaming.audience import (
    PING,
    Audiences,
    Cycle,
    Direct,
    Viewer,
    aclose,
    direct_cycle,
)

MAX_EVENT_ID_DIGITS = 18
SEP = "\n"
# How long a browser's EventSource waits before it reconnects. A reconnection after
# `done` is answered 204, which stops it for good. Sent as the first line of the first
# event's block, never as a block of its own: a block with no data dispatches nothing in a
# browser, but some readers (httpx-sse) make an empty event of it.
RETRY_MILLISECONDS = 3000
RETRY_FIELD = f"retry: {RETRY_MILLISECONDS}{SEP}".encode()
logger = logging.getLogger(__name__)


Encoder = Callable[[Event], bytes]  # an event's frame; b"": not sent in this form


def wire_data(event: Event) -> dict[str, Any]:
    """What a frame's `data` carries: the event's data with its `type` (the SSE event
    name, for clients that read one `data.type`), and on a run's tokens `role: "botN"`
    (the debate server's field, N the bot's index)."""
    data = {"type": event.type, **event.data}
    if event.type == "token" and "bot" in data:
        data["role"] = f"bot{data['bot']}"
    return data


def encode(event: Event) -> bytes:
    """One event as one SSE frame. Each event is encoded once (see `Event.encoded`), for
    all of its viewers."""
    frame = ServerSentEvent(
        data=orjson.dumps(wire_data(event)).decode(), event=event.type, id=str(event.seq), sep=SEP
    )
    return frame.encode()


def encode_unnamed(event: Event) -> bytes:
    """One event as a frame with no `event:` name (`?events=unnamed`): a browser's
    `EventSource.onmessage` receives only such frames; `data.type` says what it is."""
    frame = ServerSentEvent(
        data=orjson.dumps(wire_data(event)).decode(), id=str(event.seq), sep=SEP
    )
    return frame.encode()


def encoder_named(form: str) -> Encoder:
    """The encoder of a stream form: `named` (the default) or `unnamed`."""
    return encode_unnamed if form == "unnamed" else encode


def parse_last_event_id(header: str | None, query: str | None) -> int:
    """The position to resume after: the header wins over `?last_event_id=`; none means 0."""
    raw = header if header is not None else query
    if raw is None or raw.strip() == "":
        return 0
    value = raw.strip()
    if not value.isascii() or not value.isdigit() or len(value) > MAX_EVENT_ID_DIGITS:
        raise BadRequestError(
            f"Last-Event-ID must be a non-negative integer event id, got {raw[:40]!r}"
        )
    return int(value)


async def resume_position(
    stored: StoredStream | None, log: EventLog, stream_id: str, after_seq: int
) -> int:
    """Where a resumption after `after_seq` starts: there, or at the stream's current end
    when `after_seq` is past it. An id the stream has not reached names no event yet (ids
    are never reused), so the reader gets what comes next, at once, rather than a stream
    held silent until the run writes past that id (or ends)."""
    if after_seq <= 0:
        return after_seq
    if stored is not None:
        return min(after_seq, stored.events[-1].seq if stored.events else 0)
    try:
        return min(after_seq, await log.last_seq(stream_id))
    except StreamNotFoundError:
        return after_seq  # the reader's own lookup says what that means


class EventSource(Protocol):
    """What a stream is read from: the live log, or a stream rebuilt from storage."""

    def batches(self, stream_id: str, after_seq: int = 0) -> AsyncIterator[Sequence[Event]]: ...


async def finished_before(
    stored: StoredStream | None, log: EventLog, stream_id: str, after_seq: int
) -> bool:
    """Whether a reconnection after `after_seq` has nothing more to get: the stream ended
    (`done`) at or before that id. Such a reconnection is answered 204, which tells a
    browser's EventSource to stop instead of reconnecting every few seconds forever."""
    if after_seq <= 0:
        return False
    if stored is not None:
        return stored.finished and stored.events[-1].seq <= after_seq
    last = await log.last_seq(stream_id)
    if last <= 0 or last > after_seq:
        return False
    tail = await log.read(stream_id, last - 1)
    return bool(tail) and tail[-1].type == "done"


class ActiveStreams:
    """How many SSE streams are open now: each holds a log position, never a queue."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


async def frames(
    log: EventSource,
    stream_id: str,
    after_seq: int,
    active: ActiveStreams,
    encoder: Encoder = encode,
) -> AsyncGenerator[bytes, None]:
    """Replay from `after_seq`, then follow the log until the stream closes.

    What the log has already is written a batch at a time (one socket write for many
    frames, one id per event still), and the log gives the event loop a turn between
    batches, so a long replay neither starves other requests nor misses its client's
    departure. The response closes this generator when the client goes or stops reading
    (its send timeout), so the `finally` runs and the stream stops following the log.
    """
    active.count += 1
    retry: int | None = RETRY_MILLISECONDS  # until it went with the first event
    try:
        async for batch in log.batches(stream_id, after_seq):
            if len(batch) == 1:
                wire = batch[0].encoded(encoder)
            else:
                wire = b"".join([event.encoded(encoder) for event in batch])
            if not wire:
                continue
            if retry is not None:
                wire, retry = RETRY_FIELD + wire, None
            yield wire
    except ResumeGoneError as exc:
        data = orjson.dumps(exc.to_dict()).decode()
        yield ServerSentEvent(data=data, event="error", retry=retry, sep=SEP).encode()
    finally:
        active.count -= 1


@dataclass(frozen=True, slots=True)
class Live:
    """What a viewer of the live log needs to join its stream's audience."""

    audiences: Audiences
    log: EventLog
    stream_id: str
    after_seq: int
    encoder: Encoder
    active: ActiveStreams


class EventStreamResponse(Response):
    """An SSE response that costs each viewer as little as it can per event: the frames
    (encoded once per event, for every viewer) go to `send` as they are, one write per
    batch, from the request's own task.

    Besides that task, each viewer has one more: it waits for the client's disconnect, and
    every `min(heartbeat, send_timeout)` seconds it sends a ping when `heartbeat` has
    passed since the last (not while a write is under way), or ends the stream when a write
    has been waiting longer than `send_timeout` (a reader that stopped reading: noticed
    within `send_timeout` plus that tick). Nothing is timed per event: a write only records
    when it started. sse-starlette's response, used before, ran four tasks per viewer and
    took a lock and a cancel scope around every write. Server shutdown ends the streams
    through the log (`stop_readers`), not here.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        heartbeat: float,
        send_timeout: float,
        on_close: Callable[[], None] | None = None,
        live: Live | None = None,
    ) -> None:
        self.status_code = 200
        self.live = live
        self.background = None
        self.body_iterator = body
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.on_close = on_close
        self.init_headers(
            {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}
        )
        self._task: asyncio.Task[Any] | None = None
        self._writing_since = 0.0  # when the write in progress started; 0: none
        self._last_write = 0.0
        self._ending: str | None = None  # why the watcher ended the stream
        self._finished = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._respond(scope, receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        direct = direct_cycle(scope) if self.live is not None else None
        if direct is not None and self.live is not None:
            await self.body_iterator.aclose()  # not started: the audience writes instead
            await self._respond_direct(self.live, *direct, send)
            return
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._last_write = loop.time()
        watcher = asyncio.create_task(self._watch(receive, send))
        try:
            async for chunk in self.body_iterator:
                self._writing_since = loop.time()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self._writing_since = 0.0
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if self._ending is None or self._task is None:
                raise  # not ours: the server's
            self._task.uncancel()
            if self._ending == "timeout":
                logger.warning("dropped an SSE client that stopped reading")
        finally:
            self._finished = True
            watcher.cancel()
            await self.body_iterator.aclose()

    async def _respond_direct(
        self, live: Live, connection: Direct, cycle: Cycle, send: Send
    ) -> None:
        """Caught up, the viewer waits in its stream's audience (`streaming.audience`),
        whose pump writes to its socket; sent back when its socket fell behind, it takes
        what came meanwhile from the log through `send` (which waits for the socket to
        drain), a batch at a time, until it can join again."""
        live.active.count += 1
        position, retry = live.after_seq, RETRY_FIELD
        try:
            while True:
                viewer = Viewer(connection, cycle, position, live.encoder, retry)
                joined = live.audiences.join(
                    live.stream_id,
                    viewer,
                    heartbeat=self.heartbeat,
                    send_timeout=self.send_timeout,
                )
                if joined:
                    try:
                        outcome = await viewer.outcome
                    finally:
                        viewer.finish("gone")  # cancelled (the server's): out of the pass
                    position, retry = viewer.position, viewer.retry
                    if outcome == "gone":
                        return
                    if outcome == "timeout":
                        logger.warning("dropped an SSE client that stopped reading")
                        return
                    if outcome == "end":
                        break
                caught_up = await self._catch_up(live, cycle, position, retry, send)
                if caught_up is None:
                    return
                position, retry, more = caught_up
                if not more:
                    break
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            live.active.count -= 1

    async def _catch_up(
        self, live: Live, cycle: Cycle, position: int, retry: bytes, send: Send
    ) -> tuple[int, bytes, bool] | None:
        """One batch from the log after `position`, written through `send`: the new
        position, the retry field still to send, and whether the stream goes on; None when
        the viewer is gone or stopped reading."""
        more = True
        try:
            batches = live.log.batches(live.stream_id, position)
            try:
                batch = await anext(batches, None)
            finally:
                await aclose(batches)
            if batch is None:
                more, wire = False, b""
            else:
                position = batch[-1].seq
                wire = b"".join([event.encoded(live.encoder) for event in batch])
        except ResumeGoneError as exc:
            data = orjson.dumps(exc.to_dict()).decode()
            more, wire = False, ServerSentEvent(data=data, event="error", sep=SEP).encode()
        if wire:
            wire, retry = retry + wire, b""
            try:
                async with asyncio.timeout(self.send_timeout):
                    await send({"type": "http.response.body", "body": wire, "more_body": True})
            except TimeoutError:
                logger.warning("dropped an SSE client that stopped reading")
                return None
        if cycle.disconnected:
            return None
        return position, retry, more

    def _end(self, why: str) -> None:
        if self._ending is None and not self._finished and self._task is not None:
            self._ending = why
            self._task.cancel()

    async def _watch(self, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        tick = min(self.heartbeat, self.send_timeout)
        while True:
            try:
                async with asyncio.timeout(tick):
                    message = await receive()
            except TimeoutError:
                now = loop.time()
                if self._writing_since:
                    if now - self._writing_since >= self.send_timeout:
                        self._end("timeout")
                        return
                elif now - self._last_write >= self.heartbeat - tick / 10:
                    self._last_write = now
                    try:
                        async with asyncio.timeout(self.send_timeout):
                            await send(
                                {"type": "http.response.body", "body": PING, "more_body": True}
                            )
                    except TimeoutError:
                        self._end("timeout")
                        return
                continue
            if message["type"] == "http.disconnect":
                self._end("gone")
                return


def event_stream_response(
    log: EventSource,
    stream_id: str,
    after_seq: int,
    active: ActiveStreams,
    *,
    heartbeat: float,
    send_timeout: float,
    on_close: Callable[[], None] | None = None,
    encoder: Encoder = encode,
    audiences: Audiences | None = None,
) -> EventStreamResponse:
    """`audiences`: the live log's, when `log` is that log: a viewer on a connection that
    allows it joins its stream's audience once caught up (`streaming.audience`)."""
    live = None
    if audiences is not None:
        live = Live(audiences, cast(EventLog, log), stream_id, after_seq, encoder, active)
    return EventStreamResponse(
        frames(log, stream_id, after_seq, active, encoder),
        heartbeat=heartbeat,
        send_timeout=send_timeout,
        on_close=on_close,
        live=live,
    )

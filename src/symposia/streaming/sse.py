"""Server-Sent Events: domain events become `id`/`event`/`data` frames, resumable by id.

Domain events know nothing of SSE; `encode` is the only place that does. Pings, client
disconnects and send timeouts (a reader that stopped reading) are sse-starlette's job.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from symposia.domain.events import Event
from symposia.errors import BadRequestError
from symposia.events.log import EventLog, ResumeGoneError, StreamNotFoundError
from symposia.events.replay import StoredStream

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
) -> AsyncIterator[bytes | ServerSentEvent]:
    """Replay from `after_seq`, then follow the log until the stream closes.

    What the log has already is written a batch at a time (one socket write for many
    frames, one id per event still), and the log gives the event loop a turn between
    batches, so a long replay neither starves other requests nor misses its client's
    departure. sse-starlette closes this generator when the client goes or stops reading
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
        yield ServerSentEvent(data=data, event="error", retry=retry, sep=SEP)
    finally:
        active.count -= 1


class EventStreamResponse(EventSourceResponse):
    """sse-starlette's response, reporting a reader that stopped reading as one warning,
    and calling `on_close` (which gives back its stream slot) when it ends."""

    on_close: Callable[[], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            logger.warning("dropped an SSE client that stopped reading")
        finally:
            if self.on_close is not None:
                self.on_close()


def event_stream_response(
    log: EventSource,
    stream_id: str,
    after_seq: int,
    active: ActiveStreams,
    *,
    heartbeat: float,
    send_timeout: float,
    shutdown_grace: float,
    on_close: Callable[[], None] | None = None,
    encoder: Encoder = encode,
) -> EventStreamResponse:
    response = EventStreamResponse(
        frames(log, stream_id, after_seq, active, encoder),
        ping=heartbeat,
        send_timeout=send_timeout,
        sep=SEP,
        shutdown_grace_period=shutdown_grace,
        headers={"Cache-Control": "no-cache"},
    )
    response.on_close = on_close
    return response

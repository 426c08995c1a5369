"""The WebSocket twin of SSE: the same events, ids and order, as JSON text frames.

A socket session follows one stream at a time (the same replay-then-tail source as SSE),
answers the client's messages through a handler the router gives it, beats a heartbeat,
and closes itself: 1001 when the server leaves, 1008 for a client that stopped reading.

Every frame leaves through one `Outbox`: one send at a time, each within the send
timeout. The session holds a log position, never a queue of frames, so a client that does
not read costs at most the transport's buffer and one frame until the timeout cuts it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from symposia.domain.events import Event
from symposia.events.log import ResumeGoneError
from symposia.streaming.sse import EventSource, wire_data

logger = logging.getLogger(__name__)

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
# How long a close frame may wait for room in the socket's buffer: a client that stopped
# reading never makes room, and its socket is then left to the server to drop.
CLOSE_TIMEOUT_SECONDS = 1.0

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def encode(event: Event) -> bytes:
    """One event as one text frame: `{"type": "event", "id", "event", "data"}`, the SSE
    frame's `id`, `event` and `data` (encoded once per event, for all of its viewers)."""
    return orjson.dumps(
        {"type": "event", "id": event.seq, "event": event.type, "data": wire_data(event)}
    )


class SlowClientError(Exception):
    """The client did not take a frame within the send timeout."""


class OpenSockets:
    """How many sockets are open, and the signal that the server is leaving (set by the
    container's shutdown once runs have written their last events)."""

    __slots__ = ("_idle", "count", "leaving")

    def __init__(self) -> None:
        self.count = 0
        self.leaving = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def opened(self) -> None:
        self.count += 1
        self._idle.clear()

    def closed(self) -> None:
        self.count -= 1
        if not self.count:
            self._idle.set()

    async def go_away(self) -> None:
        """Tell every session to close (1001), and give them a moment to: the server
        closes what is still open afterwards with its own code."""
        self.leaving.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self._idle.wait()


class Outbox:
    """The one way out of a socket: one frame at a time, each within `timeout` seconds,
    so the stream, acknowledgements and heartbeats never interleave or pile up."""

    def __init__(self, websocket: WebSocket, timeout: float) -> None:
        self._websocket = websocket
        self._timeout = timeout
        self._lock = asyncio.Lock()

    async def send_text(self, text: str) -> None:
        async with self._lock:
            try:
                await asyncio.wait_for(self._websocket.send_text(text), self._timeout)
            except TimeoutError:
                raise SlowClientError(f"a frame waited {self._timeout:g} s to be sent") from None

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(orjson.dumps(message).decode())


async def forward(outbox: Outbox, source: EventSource, stream_id: str, after_seq: int) -> None:
    """Replay from `after_seq`, then follow the stream until it closes, one frame per
    event. A position the log no longer has ends with the `error` event SSE sends."""
    try:
        async for batch in source.batches(stream_id, after_seq):
            for event in batch:
                await outbox.send_text(event.encoded(encode).decode())
    except ResumeGoneError as exc:
        await outbox.send({"type": "event", "id": None, "event": "error", "data": exc.to_dict()})


class Session:
    """One accepted socket: reads the client's messages, follows a stream, beats, closes."""

    def __init__(
        self, websocket: WebSocket, sockets: OpenSockets, *, heartbeat: float, send_timeout: float
    ) -> None:
        self.websocket = websocket
        self.outbox = Outbox(websocket, send_timeout)
        self._sockets = sockets
        self._heartbeat = heartbeat
        self._follower: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self._close: tuple[int, str] | None = None

    def follow(self, source: EventSource, stream_id: str, after_seq: int) -> None:
        """Send `stream_id`'s events after `after_seq`, instead of any stream followed now."""
        if self._follower is not None:
            self._follower.cancel()
        self._follower = asyncio.create_task(
            self._guard(forward(self.outbox, source, stream_id, after_seq)),
            name=f"ws-follow-{stream_id}",
        )

    def end(self, code: int | None, reason: str = "") -> None:
        """Finish the session; close with `code` (None: the client has gone already)."""
        if not self._ended.is_set():
            self._close = (code, reason) if code is not None else None
            self._ended.set()

    async def serve(self, handle: Handler, first: dict[str, Any] | None = None) -> None:
        """Until the client leaves, is cut off, or the server leaves; `first` is a message
        already read (the one that authenticated the socket is not passed on)."""
        self._sockets.opened()
        try:
            await self._run(handle, first)
            if self._close is not None:
                await close(self.websocket, *self._close)
        finally:
            self._sockets.closed()

    async def _run(self, handle: Handler, first: dict[str, Any] | None) -> None:
        tasks = [
            asyncio.create_task(self._guard(self._receive(handle, first))),
            asyncio.create_task(self._guard(self._beat())),
            asyncio.create_task(self._leave()),
        ]
        try:
            await self._ended.wait()
        finally:
            for task in [*tasks, self._follower]:
                if task is not None:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._follower is not None:
                await asyncio.gather(self._follower, return_exceptions=True)

    async def _guard(self, work: Awaitable[None]) -> None:
        try:
            await work
        except SlowClientError as exc:
            logger.warning("cut off a WebSocket client that stopped reading: %s", exc)
            self.end(POLICY_VIOLATION, "too slow: frames were not read in time")
        except WebSocketDisconnect:
            self.end(None)
        except Exception:
            logger.exception("WebSocket session failed")
            self.end(INTERNAL_ERROR, "internal error; it has been logged")

    async def _receive(self, handle: Handler, first: dict[str, Any] | None) -> None:
        if first is not None:
            await handle(first)
        while True:
            message = await receive_json(self.websocket, self.outbox)
            if message is not None:
                await handle(message)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            await self.outbox.send({"type": "heartbeat"})

    async def _leave(self) -> None:
        """The server is leaving: what the stream got meanwhile (a run's last events) is
        sent first, then 1001, and the client reconnects elsewhere from its last id."""
        await self._sockets.leaving.wait()
        if self._follower is not None:
            await asyncio.gather(self._follower, return_exceptions=True)
        self.end(GOING_AWAY, "server shutting down")


async def receive_json(websocket: WebSocket, outbox: Outbox) -> dict[str, Any] | None:
    """The client's next message as a JSON object, or None after telling it (status 400)
    why that frame was not one. Raises WebSocketDisconnect when the client has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", NORMAL_CLOSURE))
    text = message.get("text")
    try:
        value = orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    await outbox.send(
        {
            "type": "error",
            "ref": None,
            "status": 400,
            "code": "bad_request",
            "message": "each message must be a JSON object in a text frame",
        }
    )
    return None


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close unless the client has gone; a close frame that cannot be sent in time (a
    client that stopped reading) is given up, and the server drops the connection."""
    with contextlib.suppress(TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_SECONDS)

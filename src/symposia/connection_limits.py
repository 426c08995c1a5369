"""Connections that cannot hold the server: read deadlines and a cap on how many are open.

uvicorn times out only an idle keep-alive connection, and only after a response: a
connection that sends nothing, or half a request head a byte at a time (slowloris), or
half a body, is kept for ever, and each holds a file descriptor. Enough of them and
accept() fails for everyone (`/health` included). So, on top of the bounded head
(`header_limits`):

- a request head must arrive whole within HEADER_READ_TIMEOUT_SECONDS of its first byte
  (or of the connection opening), else 408 and the connection is closed;
- a request body within BODY_READ_TIMEOUT_SECONDS of its head, else the connection is
  closed (the app sees the client leave);
- at most MAX_CONNECTIONS connections are open (by default from the descriptor limit,
  see `descriptors`): one over
  it closes the connection that has waited longest for a request (idle or half-sent),
  or, when every connection is busy with a request, is answered 503 at once.

Deadlines cost a clock read at a request's start and end; one timer per server sweeps
them while connections are open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from symposia.coalesced_writes import CoalescedWrites
from symposia.header_limits import BoundedHttpToolsProtocol
from symposia.streaming.audience import mark_direct

TIMED_OUT = b"request not received in time\n"
BUSY = b"server busy: too many open connections; try again shortly\n"


class GuardedHttpToolsProtocol(BoundedHttpToolsProtocol):
    """`BoundedHttpToolsProtocol` with read deadlines and a connection cap (class
    attributes, set by `guarded_httptools`)."""

    head_timeout = 10.0
    body_timeout = 60.0
    max_connections = 1000
    _sweeping = False  # per subclass: one sweep timer per server

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline = 0.0  # loop time by which the head or body must be in; 0: none
        self._idle_since = 0.0  # when it last started waiting for a request
        self.on_lost: Callable[[], None] | None = None  # see `streaming.audience`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A turn's writes as one system call (the head of a response with its first chunk).
        super().connection_made(CoalescedWrites(transport, self.loop))
        now = self.loop.time()
        self._deadline = now + self.head_timeout
        self._idle_since = now
        self._start_sweeping()
        if len(self.connections) > self.max_connections and not self._evict_longest_idle():
            self._answer(503, BUSY)

    def data_received(self, data: bytes) -> None:
        if not self._deadline and self._in_head:  # the first bytes of the next head
            self._deadline = self.loop.time() + self.head_timeout
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._deadline = self.loop.time() + self.body_timeout
        super().on_headers_complete()
        if self.scope["method"] == "GET":  # an event stream's viewers write to it directly
            mark_direct(cast("dict[str, Any]", self.scope), self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()  # a stream's audience lets the viewer go at once

    def on_message_complete(self) -> None:
        self._deadline = 0.0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._idle_since = self.loop.time()
        super().on_response_complete()

    # --- the cap --------------------------------------------------------------------

    def _waiting(self) -> bool:
        """Waiting for a request (idle, or its head half-sent), serving none."""
        return self._in_head and (self.cycle is None or self.cycle.response_complete)

    def _evict_longest_idle(self) -> bool:
        """Close the connection that has waited longest for a request; False if every
        other connection is serving one."""
        waiting = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, GuardedHttpToolsProtocol)
            and c._waiting()
            and not c.transport.is_closing()
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._idle_since)
        oldest.logger.info("closed the longest idle connection: MAX_CONNECTIONS reached")
        oldest.transport.close()
        return True

    # --- the deadlines --------------------------------------------------------------

    def _start_sweeping(self) -> None:
        cls = type(self)
        if not cls._sweeping:
            cls._sweeping = True
            self.loop.call_later(self._sweep_interval(), _sweep, cls, self.connections, self.loop)

    @classmethod
    def _sweep_interval(cls) -> float:
        return min(1.0, cls.head_timeout / 4, cls.body_timeout / 4)

    def _time_out(self) -> None:
        self._deadline = 0.0
        if self.transport.is_closing():
            return
        if self._in_head:
            self._answer(408, TIMED_OUT)
        else:  # a body too slow: the app learns its client left
            self.transport.close()

    def _answer(self, status: int, body: bytes) -> None:
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def _sweep(
    cls: type[GuardedHttpToolsProtocol],
    connections: set[Any],
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Time out the connections past their deadline; again soon while any is open."""
    now = loop.time()
    guarded = [c for c in connections if isinstance(c, cls)]
    for connection in guarded:
        if connection._deadline and now >= connection._deadline:
            connection._time_out()
    if guarded:
        loop.call_later(cls._sweep_interval(), _sweep, cls, connections, loop)
    else:
        cls._sweeping = False


def guarded_httptools(
    max_head_bytes: int,
    max_header_count: int,
    head_timeout: float,
    body_timeout: float,
    max_connections: int,
) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `Config(http=...)`, with these limits."""
    return type(
        "GuardedHttpTools",
        (GuardedHttpToolsProtocol,),
        {
            "max_head_bytes": max_head_bytes,
            "max_header_count": max_header_count,
            "head_timeout": head_timeout,
            "body_timeout": body_timeout,
            "max_connections": max_connections,
            "_sweeping": False,
        },
    )

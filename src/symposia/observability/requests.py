"""Per request (and per WebSocket): an id (X-Request-Id, accepted when sane or made up), one
log line, metrics.

Pure ASGI, so streaming responses pass through untouched. The id is bound to the log
context (`log_context`), so every log line of the request carries it, and so do the runs it
starts: asyncio tasks copy the context they were created in.
"""

from __future__ import annotations

import logging
import os
import re
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from symposia.observability import log_context
from symposia.observability.metrics import Metrics

logger = logging.getLogger("symposia.http")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = b"x-request-id"


def request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            text: str = value.decode("latin-1")
            if REQUEST_ID.match(text):
                return text
            break
    return os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, without the UUID object


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The metrics' children by their labels: `labels()` checks and locks on every
        # call, and a route, method and status repeat from one request to the next.
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[str, Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        log_context.bind(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (HEADER, request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self._count(route, scope["method"], status, elapsed)
            logger.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            log_context.unbind("request_id")

    def _count(self, route: str, method: str, status: int, elapsed: float) -> None:
        counter = self._counted.get((route, method, status))
        if counter is None:
            counter = self.metrics.http_requests.labels(route, method, str(status))
            self._counted[route, method, status] = counter
        counter.inc()
        histogram = self._timed.get(route)
        if histogram is None:
            histogram = self._timed[route] = self.metrics.http_duration.labels(route)
        histogram.observe(elapsed)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A socket gets an id (in the handshake's answer), one log line when it ends
        (with its close code, or the HTTP status of a refused handshake) and a count. Its
        commands are logged and counted one by one (api/ws.py)."""
        request_id = request_id_from(scope)
        log_context.bind(request_id=request_id)
        started = time.perf_counter()
        code: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal code
            if message["type"] == "websocket.accept":
                message["headers"] = [
                    *message.get("headers", []),
                    (HEADER, request_id.encode("latin-1")),
                ]
            elif message["type"] == "websocket.close" and code is None:
                code = message.get("code", 1000)
            elif message["type"] == "websocket.http.response.start" and code is None:
                code = message["status"]
            await send(message)

        async def receive_code() -> Message:
            nonlocal code
            message = await receive()
            if message["type"] == "websocket.disconnect" and code is None:
                code = message.get("code", 1005)
            return message

        try:
            await self.app(scope, receive_code, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.ws_connections.labels(route, str(code)).inc()
            logger.info(
                "websocket",
                extra={
                    "path": scope["path"],
                    "route": route,
                    "close_code": code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            log_context.unbind("request_id")

"""Refuse request bodies over MAX_BODY_BYTES with a 413, before anything parses them.

The answer takes the shape of its route: OpenAI's `{"error": {...}}` under `/v1`, the
`{"code", "message"}` of every other error elsewhere.
"""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from symposia.errors import PayloadTooLargeError
from symposia.streaming.openai_errors import is_openai_path, openai_error


class _TooLargeError(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on as the 413 it is."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes (MAX_BODY_BYTES)")


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope["path"], send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError(self.max_bytes)
            return message

        # `send` is passed on untouched: the 413 for a body that turns out too large is
        # raised as an HTTPException while it is read, before any response has started.
        await self.app(scope, counting_receive, send)

    async def _refuse(self, path: str, send: Send) -> None:
        error = PayloadTooLargeError(f"request body over {self.max_bytes} bytes (MAX_BODY_BYTES)")
        if is_openai_path(path):
            body = orjson.dumps({"error": openai_error(error)[1]})
        else:
            body = orjson.dumps(error.to_dict())
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

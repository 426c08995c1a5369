"""A lean streaming response for the OpenAI-compatible relay.

It does what the relay needs and nothing per chunk beyond one `send`; a `LastChunk`
ends the body with it. The request's scope (`request_scope`), handed over by the
handler, cancels the body, and so the upstream call, the moment the client leaves; at
shutdown it ends the stream with an OpenAI error chunk; the response closes it when it
ends. Each send is bounded by `send_timeout`, so a client that stops reading is dropped
too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from symposia.aio import Watchdog
from symposia.errors import ShuttingDownError
from symposia.streaming.last_chunk import LastChunk
from symposia.streaming.openai_chunks import ChunkEncoder
from symposia.streaming.openai_errors import openai_error
from symposia.streaming.request_scope import ClientGoneError, RequestScope

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
# What `init_headers` makes of HEADERS alone, made once: most responses add none.
RAW_HEADERS = (
    *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in HEADERS.items()),
    (b"content-type", b"text/event-stream; charset=utf-8"),
)


class RelayResponse(Response):
    media_type = "text/event-stream"
    charset = "utf-8"

    def __init__(
        self,
        body: AsyncIterator[bytes],
        scope: RequestScope,
        headers: Mapping[str, str] | None = None,
        send_timeout: float = 30.0,
        farewell: Callable[[dict[str, Any]], bytes] = ChunkEncoder.error,
    ) -> None:
        self.body_iterator = body
        self.farewell = farewell
        self.request_scope = scope
        self.status_code = 200
        self.background = None
        self.send_timeout = send_timeout
        if headers:
            self.init_headers({**HEADERS, **headers})
        else:
            self.raw_headers = list(RAW_HEADERS)  # a list of its own: middleware may add

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = Watchdog(self.send_timeout)
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            with self.request_scope:
                async for chunk in self.body_iterator:
                    deadline.arm()
                    last = type(chunk) is LastChunk
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                    deadline.disarm()
                    if last:
                        return  # the body's end went with it
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ClientGoneError:
            pass  # the client left: that is how this response ends
        except ShuttingDownError as exc:
            await self._farewell(send, exc)
        except asyncio.CancelledError:
            if not deadline.fired:
                raise
            # The client stopped reading: that is how this response ends.
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()
        except OSError:
            pass  # a socket already closed
        finally:
            deadline.close()
            await self._close_body()
            self.request_scope.close()

    async def _farewell(self, send: Send, exc: ShuttingDownError) -> None:
        """End the stream as its protocol ends a failure: by default an OpenAI error chunk
        (an OpenAI SDK raises it as an `APIError`; no `[DONE]` follows an error), for the
        Responses API a `response.failed` event (`farewell`)."""
        await self._close_body()  # the upstream closed and the partial reply kept first
        chunk = self.farewell(openai_error(exc)[1])
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(self.send_timeout):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _close_body(self) -> None:
        aclose = getattr(self.body_iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

"""A lean streaming response for the OpenAI-compatible relay.

It does what the relay needs and nothing per chunk beyond one `send`: a task watches for
the client's disconnect and cancels the body (and so the upstream call) at once; each
send is bounded by `send_timeout`, so a client that stops reading is dropped too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from symposia.aio import Watchdog

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


class RelayResponse(Response):
    media_type = "text/event-stream"
    charset = "utf-8"

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: Mapping[str, str] | None = None,
        send_timeout: float = 30.0,
    ) -> None:
        self.body_iterator = body
        self.status_code = 200
        self.background = None
        self.send_timeout = send_timeout
        self.init_headers({**HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        client_gone = False

        async def watch_disconnect() -> None:
            nonlocal client_gone
            while (await receive())["type"] != "http.disconnect":
                pass
            client_gone = True
            streaming.cancel()

        watcher = asyncio.create_task(watch_disconnect())
        deadline = Watchdog(self.send_timeout)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self.body_iterator:
                deadline.arm()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                deadline.disarm()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not (client_gone or deadline.fired):
                raise
            # The client left, or stopped reading: that is how this response ends.
            streaming.uncancel()
        except OSError:
            pass  # a socket already closed
        finally:
            deadline.close()
            watcher.cancel()
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

"""Request heads of bounded size and header count, refused with 431 before the app runs.

uvicorn's httptools protocol sets no limit: llhttp hands a header over piece by piece and
httptools joins the pieces, so an 8 MB header was 8 MB of memory (and 20,000 headers a
20,000-item list) before authentication was ever asked. `BoundedHttpToolsProtocol`
counts the bytes of each request head as they arrive and its headers as they complete,
and answers 431 and closes the connection once either is over its limit. The cost on the
hot path is a few integer additions per header.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

HEADER_OVERHEAD = 4  # ": " and CRLF
TOO_LARGE = b"request header fields too large"


class HeadTooLargeError(Exception):
    """Raised inside a parser callback to stop parsing a head over the limits."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `max_head_bytes` and `max_header_count`.

    Subclasses set the limits (`bounded_httptools` makes one); the request line counts
    towards the bytes. A chunk read entirely inside a head counts whole, so a header that
    never ends is cut off after one read (at most 256 KiB) past the limit; a pipelined
    head that starts mid-chunk counts from its completed pieces.
    """

    max_head_bytes = 32 * 1024
    max_header_count = 100

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes belong to a request head
        self._head_read = 0  # bytes of reads that fell wholly inside the head
        self._head_parsed = 0  # bytes of its completed request line and headers
        self._header_count = 0
        self._completed = 0  # messages completed during the current read

    def data_received(self, data: bytes) -> None:
        was_in_head, self._completed = self._in_head, 0
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLargeError) or self._over_limits():
                self._refuse()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and was_in_head and not self._completed:
            self._head_read += len(data)  # the whole read belongs to an unfinished head
            if self._over_limits():
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_read = self._head_parsed = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        if self._head_parsed > self.max_head_bytes:
            raise HeadTooLargeError
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's on_header, inlined with the count: this runs for every header.
        self._header_count += 1
        self._head_parsed += len(name) + len(value) + HEADER_OVERHEAD
        if self._head_parsed > self.max_head_bytes or self._header_count > self.max_header_count:
            raise HeadTooLargeError
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._completed += 1
        super().on_message_complete()

    def _over_limits(self) -> bool:
        head_bytes = max(self._head_read, self._head_parsed)
        return head_bytes > self.max_head_bytes or self._header_count > self.max_header_count

    def _refuse(self) -> None:
        if self.transport.is_closing():
            return
        self.logger.warning(
            "refused a request head over %d bytes or %d headers",
            self.max_head_bytes,
            self.max_header_count,
        )
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(TOO_LARGE)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                TOO_LARGE,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def bounded_httptools(max_head_bytes: int, max_header_count: int) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `Config(http=...)`, with these limits."""
    return type(
        "BoundedHttpTools",
        (BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "max_header_count": max_header_count},
    )

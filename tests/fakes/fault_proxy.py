"""A TCP proxy on loopback in front of one server (PostgreSQL, Redis), whose faults a test
switches while clients stay connected to it.

Modes, applied at once to the connections open and to those that come:
- `pass`: bytes flow both ways.
- `blackhole`: connections are accepted and kept, nothing is forwarded either way (what a
  lost route or a stalled server looks like: no error, only silence). Bytes are held, not
  dropped, so switching back to `pass` lets the conversations go on.
- `cut`: every connection is closed (FIN), and a new one is closed as soon as it opens.
- `reset`: the same with a TCP reset (RST).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType
from typing import Literal

Mode = Literal["pass", "blackhole", "cut", "reset"]
CHUNK_BYTES = 65_536


def _close(writer: asyncio.StreamWriter, reset: bool) -> None:
    if reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


class _Link:
    """One client connection and its upstream twin, with a pump each way."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.writers = [client]
        self.tasks: list[asyncio.Task[None]] = []

    def close(self, reset: bool) -> None:
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in self.writers:
            _close(writer, reset)


class FaultProxy:
    """`async with FaultProxy(host, port) as proxy:` then connect to
    127.0.0.1:`proxy.listen_port` and call `proxy.set_mode(...)` to inject a fault."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_port = 0
        self.mode: Mode = "pass"
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        self._drop_all(reset=False)
        await self._server.wait_closed()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "pass":
            self._flowing.set()
            return
        self._flowing.clear()
        if mode in ("cut", "reset"):
            self._drop_all(reset=mode == "reset")

    def _drop_all(self, reset: bool) -> None:
        for link in list(self._links):
            link.close(reset)
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode in ("cut", "reset"):
            _close(writer, reset=self.mode == "reset")
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._flowing.wait()  # a black hole accepts, and never connects on
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except (OSError, asyncio.CancelledError):
            self._links.discard(link)
            _close(writer, reset=False)
            return
        if link not in self._links:  # dropped while connecting
            _close(up_writer, reset=False)
            return
        link.writers.append(up_writer)
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                await self._flowing.wait()  # held, not dropped, in a black hole
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            # One side ended: end the other (a half-open proxy would hide the close).
            if link in self._links:
                self._links.discard(link)
                link.close(reset=False)

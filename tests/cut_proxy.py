"""A TCP proxy in front of a real server (PostgreSQL, Redis) that a test cuts and restores.

`cut()` closes every open connection and, until `restore()`, accepts new ones only to
close them at once: what a server that went away looks like to its clients. `stall()`
keeps connections open but forwards nothing (a black hole) until `restore()`. The
machine's servers are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["up", "cut", "stall"]
CHUNK = 65_536


class CutProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "up"
        self.port = 0
        self.connections = 0  # accepted while up: how many the client opened
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> CutProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.restore()
        self._close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.mode = "cut"
        self._flowing.set()
        self._close_all()

    def stall(self) -> None:
        self.mode = "stall"
        self._flowing.clear()

    def restore(self) -> None:
        self.mode = "up"
        self._flowing.set()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.close()
            return
        await self._flowing.wait()  # a stalled proxy neither connects nor answers
        if self.mode == "cut":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for each in (writer, up_writer):
            self._writers.discard(each)
            each.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if writer.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

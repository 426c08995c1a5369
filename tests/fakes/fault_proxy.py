"""A TCP fault proxy for tests: put it between Symposia and PostgreSQL or Redis, then
break the network in the ways production does.

    async with FaultProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.listen_port}/db"
        ...
        proxy.set_mode("stall")   # every byte held from now on, both ways
        proxy.set_mode("pass")    # the held bytes flow again, as a healed partition does

Modes (`set_mode` takes effect at once, for the open connections and the new ones):

- ``pass``: forward both ways.
- ``cut``: close every open connection (a FIN to both sides) and refuse new ones (the
  listening socket is closed, so a connect gets ECONNREFUSED); ``pass`` listens again on
  the same port.
- ``stall``: accept, and forward nothing either way; the bytes are held, and flow again
  when the mode goes back to ``pass`` or ``slow`` (a partition that heals).
- ``blackhole``: accept, and discard every byte either way; the connections it touched
  are reset when the mode changes (their protocol state is lost).
- ``slow``: forward each chunk after `delay` seconds.
- ``reset``: reset every open connection (an RST, by SO_LINGER 0) and every new one
  as soon as it is accepted.

It runs in the event loop of whoever starts it: a test's loop, to which `symposia serve`
processes connect like any client (the loop must not be blocked for long, or the proxy
stalls too), or a thread of its own (`threaded()`), for sync code or a loop that blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Literal, Self, get_args

Mode = Literal["pass", "cut", "stall", "blackhole", "slow", "reset"]
MODES: tuple[Mode, ...] = get_args(Mode)
CHUNK = 65_536
DEFAULT_DELAY = 0.2  # seconds per chunk in `slow`
CONNECT_TIMEOUT = 5.0


def _linger_zero(sock: socket.socket | None) -> None:
    """Make the next close send an RST instead of a FIN."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.discarded = False  # saw `blackhole`: reset when the mode changes

    def close(self, *, reset: bool = False) -> None:
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            if reset:
                _linger_zero(writer.get_extra_info("socket"))
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()


class FaultProxy:
    """A proxy from `listen_port` (loopback) to `target_host:target_port`; see the module
    docstring for the modes."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        delay: float = DEFAULT_DELAY,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.delay = delay
        self.mode: Mode = "pass"
        self.accepted = 0  # connections accepted so far
        self.history: list[Mode] = []  # every mode set, in order
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("FaultProxy already started")
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._started = True
        await self._listen()

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if not self._started:
            return
        self._started = False
        self._close_listener()
        pairs = list(self._pairs)
        for pair in pairs:
            pair.close()
        tasks = [task for pair in pairs for task in pair.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._pairs.clear()

    aclose = stop
    close = stop

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    # -- faults ------------------------------------------------------------------------------

    def set_mode(self, mode: Mode, *, delay: float | None = None) -> None:
        """Switch to `mode` now (from the proxy's own loop; `threaded()` proxies forward it
        there). `delay` sets the per-chunk delay of `slow`."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if delay is not None:
            self.delay = delay
        previous, self.mode = self.mode, mode
        self.history.append(mode)
        if previous == "blackhole" and mode != "blackhole":
            for pair in [p for p in self._pairs if p.discarded]:
                self._drop(pair, reset=True)
        if mode == "cut":
            self._close_listener()
            for pair in list(self._pairs):
                self._drop(pair, reset=False)
        elif mode == "reset":
            for pair in list(self._pairs):
                self._drop(pair, reset=True)
        if previous == "cut" and mode != "cut" and self._started:
            self._listen_now()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # wakes the pumps holding bytes, so they read the new mode

    # -- listening ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, sock=self._bound_socket(), limit=CHUNK
        )

    def _bound_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.listen_host, self.listen_port))
        sock.listen(128)
        sock.setblocking(False)
        self.listen_port = sock.getsockname()[1]
        return sock

    def _listen_now(self) -> None:
        """Listen again at once (connects queue in the backlog until the server accepts)."""
        sock = self._bound_socket()
        loop = self._loop or asyncio.get_running_loop()

        async def serve() -> None:
            self._server = await asyncio.start_server(self._accept, sock=sock, limit=CHUNK)

        loop.create_task(serve())

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    # -- connections -------------------------------------------------------------------------

    def _drop(self, pair: _Pair, *, reset: bool) -> None:
        self._pairs.discard(pair)
        pair.close(reset=reset)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        pair = _Pair(writer)
        if self.mode in ("cut", "reset"):
            pair.close(reset=True)
            return
        self._pairs.add(pair)
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port, limit=CHUNK),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError):
            self._drop(pair, reset=True)  # the target is down: so is the proxy's peer
            return
        pair.upstream = up_writer
        if pair not in self._pairs:  # cut or reset while connecting
            pair.close(reset=self.mode == "reset")
            return
        pair.tasks = [
            asyncio.create_task(self._pump(pair, reader, up_writer)),
            asyncio.create_task(self._pump(pair, up_reader, writer)),
        ]
        await asyncio.gather(*pair.tasks, return_exceptions=True)
        self._drop(pair, reset=False)

    async def _pump(
        self, pair: _Pair, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                while self.mode == "stall":  # held until the partition heals
                    await self._changed.wait()
                if pair not in self._pairs:
                    return
                if self.mode == "blackhole":
                    pair.discarded = True
                    continue
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        # One side ended: end the other's writing half, as TCP would.
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class ThreadedFaultProxy:
    """A `FaultProxy` running in a thread with its own event loop: for sync tests, or a
    test loop that blocks (waiting on a process) while servers must still reach their
    database. `set_mode` may be called from any thread."""

    def __init__(self, target_host: str, target_port: int, **options: float | int | str) -> None:
        self._options = options
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.proxy: FaultProxy | None = None

    def start(self) -> None:
        self._thread.start()

        async def make() -> FaultProxy:
            proxy = FaultProxy(*self._target, **self._options)  # type: ignore[arg-type]
            await proxy.start()
            return proxy

        self.proxy = asyncio.run_coroutine_threadsafe(make(), self._loop).result(10)

    def stop(self) -> None:
        if self.proxy is not None:
            asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def listen_port(self) -> int:
        assert self.proxy is not None, "not started"
        return self.proxy.listen_port

    @property
    def mode(self) -> Mode:
        assert self.proxy is not None, "not started"
        return self.proxy.mode

    def set_mode(self, mode: Mode, *, delay: float | None = None) -> None:
        assert self.proxy is not None, "not started"
        proxy = self.proxy

        async def switch() -> None:
            proxy.set_mode(mode, delay=delay)

        asyncio.run_coroutine_threadsafe(switch(), self._loop).result(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def threaded(
    target_host: str, target_port: int, **options: float | int | str
) -> Iterator[ThreadedFaultProxy]:
    """`with threaded(host, port) as proxy:` a proxy in a thread of its own."""
    with ThreadedFaultProxy(target_host, target_port, **options) as proxy:
        yield proxy

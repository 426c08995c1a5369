"""The fault proxy itself (tests/fakes/fault_proxy.py), against a loopback echo server:
each mode does to a client exactly what its docstring says, and `pass` heals it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from tests.fakes.fault_proxy import FaultProxy, threaded

WAIT = 0.3  # long enough to see that nothing comes on loopback


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with FaultProxy("127.0.0.1", port, delay=0.25) as made:
        yield made
    server.close()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.listen_port)


async def _roundtrip(proxy: FaultProxy, payload: bytes = b"ping") -> bytes:
    reader, writer = await _connect(proxy)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), 2)
    finally:
        writer.close()


async def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    assert await _roundtrip(proxy) == b"ping"
    assert proxy.accepted == 1


async def test_cut_closes_open_connections_refuses_new_ones_and_pass_heals(
    proxy: FaultProxy,
) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"a")
    assert await reader.readexactly(1) == b"a"
    proxy.set_mode("cut")
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the proxy
    with pytest.raises(ConnectionRefusedError):
        await _connect(proxy)
    writer.close()
    proxy.set_mode("pass")
    assert await _roundtrip(proxy) == b"ping"  # listening again, on the same port


async def test_stall_holds_bytes_until_the_partition_heals(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.set_mode("stall")
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), WAIT)
    late_reader, late_writer = await _connect(proxy)  # a new connection is accepted...
    late_writer.write(b"late")
    with pytest.raises(TimeoutError):  # ...and stalled too
        await asyncio.wait_for(late_reader.readexactly(4), WAIT)
    proxy.set_mode("pass")
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"held"
    assert await asyncio.wait_for(late_reader.readexactly(4), 2) == b"late"
    writer.close()
    late_writer.close()


async def test_blackhole_discards_and_resets_its_connections_when_it_ends(
    proxy: FaultProxy,
) -> None:
    reader, writer = await _connect(proxy)
    proxy.set_mode("blackhole")
    writer.write(b"lost")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), WAIT)
    proxy.set_mode("pass")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(4), 2)
    writer.close()
    assert await _roundtrip(proxy) == b"ping"


async def test_slow_delays_each_chunk(proxy: FaultProxy) -> None:
    proxy.set_mode("slow")
    started = time.monotonic()
    assert await _roundtrip(proxy) == b"ping"
    assert time.monotonic() - started >= 0.45  # one chunk each way, 0.25 s each


async def test_reset_sends_an_rst_to_open_and_new_connections(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.set_mode("reset")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), 2)
    writer.close()
    reader, writer = await _connect(proxy)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), 2)
    writer.close()
    proxy.set_mode("pass")
    assert await _roundtrip(proxy) == b"ping"


def test_a_threaded_proxy_serves_sync_code() -> None:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with threaded("127.0.0.1", port) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=2)
        upstream, _ = listener.accept()
        client.sendall(b"hi")
        assert upstream.recv(2) == b"hi"
        proxy.set_mode("reset")
        with pytest.raises(ConnectionResetError):
            client.recv(1)
        client.close()
        upstream.close()
    listener.close()

"""The fault proxy does what the fault tests take it to do, against a loopback echo server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.fault_proxy import FaultProxy

QUIET_SECONDS = 0.3


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with FaultProxy("127.0.0.1", port) as fault_proxy:
        yield fault_proxy
    server.close()
    await server.wait_closed()


async def _connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.listen_port)


async def _round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"ping")
    await writer.drain()
    return await asyncio.wait_for(reader.read(1024), QUIET_SECONDS)


async def test_pass_and_black_hole_hold_bytes_until_the_route_is_back(proxy: FaultProxy) -> None:
    reader, writer = await _connect(proxy)
    assert await _round_trip(reader, writer) == b"ping"
    proxy.set_mode("blackhole")
    with pytest.raises(TimeoutError):
        await _round_trip(reader, writer)
    late_reader, late_writer = await _connect(proxy)  # accepted, never answered
    with pytest.raises(TimeoutError):
        await _round_trip(late_reader, late_writer)
    proxy.set_mode("pass")
    assert await asyncio.wait_for(reader.read(1024), QUIET_SECONDS) == b"ping"
    assert await asyncio.wait_for(late_reader.read(1024), QUIET_SECONDS) == b"ping"
    for open_writer in (writer, late_writer):
        open_writer.close()


async def test_cut_closes_and_reset_resets_every_connection(proxy: FaultProxy) -> None:
    opened: list[asyncio.StreamWriter] = []

    async def connect() -> asyncio.StreamReader:
        reader, writer = await _connect(proxy)
        opened.append(writer)
        return reader

    try:
        reader = await connect()
        assert await _round_trip(reader, opened[-1]) == b"ping"
        proxy.set_mode("cut")
        assert await asyncio.wait_for(reader.read(1024), QUIET_SECONDS) == b""  # EOF
        reader = await connect()  # a new one is closed at once
        assert await asyncio.wait_for(reader.read(1024), QUIET_SECONDS) == b""
        proxy.set_mode("pass")
        reader = await connect()
        assert await _round_trip(reader, opened[-1]) == b"ping"
        proxy.set_mode("reset")
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(1024), QUIET_SECONDS)
    finally:
        for writer in opened:
            writer.close()

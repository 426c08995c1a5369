"""A client that never reads is cut off: the server keeps a log position for it, never a
queue, and gives up a frame that waits past the send timeout (a 1008 close)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import time

import httpx
import pytest

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import LiveServer
from tests.helpers import eventually
from tests.test_ws_runs import start_run

CHUNK = "x" * 20_000
CHUNKS = 500  # 10 MB of tokens per turn, far more than any socket buffer
SEND_TIMEOUT = 1.0
# What may wait on the server for such a client: asyncio's write buffer (its high-water
# mark, 64 KiB) and one frame.
BOUND = 64 * 1024 + 2 * len(CHUNK)


@pytest.fixture
def settings() -> Settings:
    return make_settings(sse_heartbeat_seconds=0.2, sse_send_timeout=SEND_TIMEOUT)


def handshake(port: int, path: str) -> socket.socket:
    """A raw WebSocket handshake with a small receive buffer; the caller never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # the answer's head only, byte by byte: nothing after it
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def server_buffer(live: LiveServer) -> int:
    """Bytes waiting in uvicorn's transports for their clients (this test's socket)."""
    return sum(
        c.transport.get_write_buffer_size()
        for c in live.server.server_state.connections
        if c.transport is not None and not c.transport.is_closing()
    )


async def test_a_client_that_never_reads_is_cut_off_with_bounded_memory(
    live: LiveServer,
    container: Container,
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted.add_script("flood", Script(chunks=[CHUNK] * CHUNKS))
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        run_id = await start_run(http, "scripted/flood", max_turns=1)
    sock = await asyncio.to_thread(handshake, live.port, f"/api/ws/runs/{run_id}?after=0")
    try:
        await eventually(lambda: container.sockets.count == 1, within=5)
        started = time.monotonic()
        peak = 0
        while container.sockets.count and time.monotonic() - started < 10:
            peak = max(peak, server_buffer(live))
            await asyncio.sleep(0.01)
        cut_after = time.monotonic() - started
        assert container.sockets.count == 0, "the slow client was never cut off"
        assert peak <= BOUND, f"{peak} bytes buffered for one client"
        assert cut_after < SEND_TIMEOUT + 5
        assert "cut off a WebSocket client that stopped reading" in caplog.text
        closes = container.metrics.registry.get_sample_value(
            "symposia_websockets_total", {"route": "/api/ws/runs/{run_id}", "code": "1008"}
        )
        assert closes == 1
        # Reading now: what the server had buffered, then the end of the connection,
        # long before the 10 MB the turn produced.
        received = await asyncio.to_thread(read_to_end, sock)
        assert received < CHUNKS * len(CHUNK) / 2
    finally:
        sock.close()
    logging.getLogger(__name__).info(
        "peak %d B buffered, cut after %.2f s, client got %d B", peak, cut_after, received
    )


def read_to_end(sock: socket.socket) -> int:
    sock.settimeout(10)
    total = 0
    while chunk := sock.recv(65536):
        total += len(chunk)
    return total

"""A response's head leaves with the next write, or at the end of the loop's turn, never
after the connection is closed or aborted; other writes go straight through."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import uvicorn

from symposia.coalesced_writes import CoalescedWrites
from symposia.connection_limits import guarded_httptools
from tests.fakes.live import free_port


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


HEAD = b"HTTP/1.1 200 OK\r\n\r\n"


async def test_a_head_leaves_with_the_next_write_and_later_writes_go_straight() -> None:
    raw = RecordingTransport()
    writes = CoalescedWrites(raw, asyncio.get_running_loop())
    writes.write(HEAD)
    writes.write(b"")  # nothing to send: no empty write either
    assert raw.writes == []
    assert writes.get_write_buffer_size() == len(HEAD)
    writes.writelines([b"5\r\nhello\r\n", bytearray(b"0\r\n\r\n")])
    assert raw.writes == [HEAD + b"5\r\nhello\r\n", b"0\r\n\r\n"]
    await asyncio.sleep(0)  # the turn's end finds nothing held
    assert len(raw.writes) == 2


async def test_a_head_alone_leaves_at_the_end_of_the_turn() -> None:
    raw = RecordingTransport()
    writes = CoalescedWrites(raw, asyncio.get_running_loop())
    writes.write(HEAD)
    await asyncio.sleep(0)
    assert raw.writes == [HEAD]
    writes.write(b"data: 1\n\n")
    assert raw.writes == [HEAD, b"data: 1\n\n"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    raw = RecordingTransport()
    writes = CoalescedWrites(raw, asyncio.get_running_loop())
    writes.write(HEAD)
    writes.close()
    assert raw.writes == [HEAD]
    assert raw.closed
    await asyncio.sleep(0)  # the pending flush finds nothing, and writes nothing
    assert raw.writes == [HEAD]

    raw = RecordingTransport()
    writes = CoalescedWrites(raw, asyncio.get_running_loop())
    writes.write(HEAD)
    writes.abort()
    await asyncio.sleep(0)
    assert raw.writes == []
    assert raw.aborted


async def test_a_peer_gone_meanwhile_gets_nothing() -> None:
    raw = RecordingTransport()
    writes = CoalescedWrites(raw, asyncio.get_running_loop())
    writes.write(HEAD)
    raw.closed = True  # the peer closed before the turn ended
    await asyncio.sleep(0)
    assert raw.writes == []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one ", b"two ", b"three"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture
async def served() -> Any:
    port = free_port()
    protocol = guarded_httptools(32 * 1024, 100, 10.0, 60.0, 100)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await task


async def test_a_response_written_in_one_turn_arrives_whole_over_keep_alive(served: int) -> None:
    """Through the server's protocol: the head comes with the first chunk, and a second
    request on the connection is answered too."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served}") as client:
        for _ in range(2):
            answer = await client.get("/")
            assert answer.status_code == 200
            assert answer.text == "one two three"
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    first = await reader.read(65536)  # the head's write carried the first chunk
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\n4\r\none \r\n" in first
    writer.close()

"""SSE over a real socket: replay, resume, many viewers, heartbeats, UTF-8, disconnects."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import LiveServer
from tests.helpers import tokens_of, wait_done
from tests.sse import collect, frames


@pytest.fixture
def settings() -> Settings:
    return make_settings(sse_heartbeat_seconds=0.2, sse_send_timeout=1.0)


async def _start(http: httpx.AsyncClient, model: str, max_turns: int = 2) -> str:
    response = await http.post(
        "/api/run",
        json={
            "topic": "Tabs or spaces?",
            "max_turns": max_turns,
            "bots": [{"name": "Ada", "model": model}, {"name": "Bert", "model": model}],
        },
    )
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


@pytest.fixture
async def http(live: LiveServer) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as client:
        yield client  # type: ignore[misc]


async def test_late_join_replays_everything(http: httpx.AsyncClient, container: Container) -> None:
    run_id = await _start(http, "scripted/echo")
    events = await wait_done(container, run_id)
    replay = await collect(http, f"/api/stream/{run_id}")
    assert [(f.seq, f.event, f.data) for f in replay] == [(e.seq, e.type, e.data) for e in events]


async def test_reconnect_with_last_event_id_has_no_gap_and_no_duplicate(
    http: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(20)], delay=0.01))
    run_id = await _start(http, "scripted/paced")
    first = await collect(http, f"/api/stream/{run_id}", stop_after=7)  # then drop
    last = first[-1].id
    assert last == "7"
    header_resume = await collect(http, f"/api/stream/{run_id}", {"Last-Event-ID": last})
    query_resume = await collect(http, f"/api/stream/{run_id}?last_event_id={last}")
    seqs = [f.seq for f in first + header_resume]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [f.seq for f in query_resume] == [f.seq for f in header_resume]
    assert header_resume[-1].event == "done"


async def test_two_viewers_see_identical_sequences(
    http: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(15)], delay=0.01))
    run_id = await _start(http, "scripted/paced", max_turns=3)
    one, two = await asyncio.gather(
        collect(http, f"/api/stream/{run_id}"), collect(http, f"/api/stream/{run_id}")
    )
    assert [(f.id, f.event, f.data_lines) for f in one] == [
        (f.id, f.event, f.data_lines) for f in two
    ]
    assert one[-1].event == "done"


async def test_heartbeats_arrive_while_idle(
    http: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    run_id = await _start(http, "scripted/stall")
    comments = 0
    async with http.stream("GET", f"/api/stream/{run_id}") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(5):
            async for frame in frames(response):
                if frame.comment is not None:
                    comments += 1
                    if comments == 2:
                        break
    assert comments == 2


async def test_utf8_character_split_across_deltas_arrives_whole(
    http: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    euro, smile = "€".encode(), "😀".encode()
    chunks: list[str | bytes] = [
        b"price " + euro[:1],
        euro[1:2],
        euro[2:] + b" ",
        smile[:3],
        smile[3:],
    ]
    scripted.add_script("bytes", Script(chunks=chunks))
    run_id = await _start(http, "scripted/bytes", max_turns=1)
    frames_ = await collect(http, f"/api/stream/{run_id}")
    deltas = [f.data["delta"] for f in frames_ if f.event == "token"]
    assert deltas == ["price ", "€ ", "😀"]
    assert "".join(deltas) == "price € 😀"


async def test_a_client_that_leaves_does_not_stop_the_run(
    http: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(10)], delay=0.01))
    run_id = await _start(http, "scripted/paced", max_turns=2)
    await collect(http, f"/api/stream/{run_id}", stop_after=3)
    events = await wait_done(container, run_id)
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    assert len(tokens_of(events, 1)) > 0


async def test_a_reader_that_stops_reading_is_dropped(
    live: LiveServer,
    http: httpx.AsyncClient,
    container: Container,
    scripted: ScriptedProvider,
) -> None:
    """A viewer that never reads must not hold the server: its sends time out and it goes."""
    big = "x" * 60_000
    scripted.add_script("flood", Script(chunks=[big] * 200, delay=0.001))
    run_id = await _start(http, "scripted/flood", max_turns=1)
    sock = socket.create_connection(("127.0.0.1", live.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /api/stream/{run_id} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    try:
        events = await wait_done(container, run_id, timeout=20)
        assert events[-1].data == {
            "status": "completed",
            "ended_by": "max_turns",
        }  # the run was not held back
        # The stalled viewer's sends timed out: the server stopped following the log for it.
        for _ in range(300):
            if container.streams.count == 0:
                break
            await asyncio.sleep(0.01)
        assert container.streams.count == 0
        sock.setblocking(False)
        received = 0
        for _ in range(50):
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            if not data:
                break
            received += len(data)
        # What was buffered for it is bounded: a small part of what the run produced.
        assert 0 < received < len(big) * 200 // 4
    finally:
        sock.close()


async def test_a_viewer_that_leaves_an_idle_stream_is_let_go(
    http: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    """No event comes to notice the departure by: the client's disconnect ends the stream."""
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    run_id = await _start(http, "scripted/stall")
    await collect(http, f"/api/stream/{run_id}", stop_after=1)
    for _ in range(300):
        if container.streams.count == 0:
            break
        await asyncio.sleep(0.01)
    assert container.streams.count == 0

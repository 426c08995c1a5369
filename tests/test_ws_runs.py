"""WebSocket of a run: the same events, ids and order as SSE; resume; commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests import ws
from tests.conftest import make_settings
from tests.fakes.live import LiveServer, start_live_server
from tests.helpers import wait_done, wait_for_event
from tests.sse import collect
from tests.ws import command, events_until_done, next_frame, open_socket

settings = ws.settings
http = ws.http


async def start_run(http: httpx.AsyncClient, model: str, max_turns: int = 2) -> str:
    bots = [{"name": "Ada", "model": model}, {"name": "Bert", "model": model}]
    response = await http.post(
        "/api/run", json={"topic": "Tabs or spaces?", "max_turns": max_turns, "bots": bots}
    )
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


def triples(frames: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
    return [(f["id"], f["event"], f["data"]) for f in frames]


async def test_socket_replays_what_sse_sends(
    live: LiveServer, http: httpx.AsyncClient, container: Container
) -> None:
    run_id = await start_run(http, "scripted/echo")
    await wait_done(container, run_id)
    sse = await collect(http, f"/api/stream/{run_id}")
    async with open_socket(live, f"/api/ws/runs/{run_id}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "ref": "s", "after": 0}))
        ack = await next_frame(ws)  # before the first event, however fast they come
        assert (ack["type"], ack["ref"]) == ("ack", "s")
        socket_events = await events_until_done(ws)
    assert triples(socket_events) == [(f.seq, f.event, f.wire) for f in sse]
    assert socket_events[-1]["event"] == "done"


async def test_live_socket_and_sse_see_the_same_sequence(
    live: LiveServer, http: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(15)], delay=0.01))
    run_id = await start_run(http, "scripted/paced", max_turns=3)

    async def over_socket() -> list[dict[str, Any]]:
        async with open_socket(live, f"/api/ws/runs/{run_id}") as ws:
            ack = await command(ws, type="subscribe", ref="s", after=0)
            assert (ack["type"], ack["result"]) == ("ack", {"after": 0})
            return await events_until_done(ws)

    socket_events, sse = await asyncio.gather(over_socket(), collect(http, f"/api/stream/{run_id}"))
    assert triples(socket_events) == [(f.seq, f.event, f.wire) for f in sse]
    assert [e["id"] for e in socket_events] == list(range(1, len(socket_events) + 1))


async def test_resume_after_reconnect_has_no_gap_and_no_duplicate(
    live: LiveServer, http: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(20)], delay=0.01))
    run_id = await start_run(http, "scripted/paced")
    async with open_socket(live, f"/api/ws/runs/{run_id}?after=0") as ws:
        first = await events_until_done(ws, stop_after=7)  # then drop
    last = first[-1]["id"]
    assert last == 7
    async with open_socket(live, f"/api/ws/runs/{run_id}?after={last}") as ws:
        rest = await events_until_done(ws)
    ids = [e["id"] for e in first + rest]
    assert ids == list(range(1, len(ids) + 1))
    sse = await collect(http, f"/api/stream/{run_id}", {"Last-Event-ID": str(last)})
    assert triples(rest) == [(f.seq, f.event, f.wire) for f in sse]


async def test_heartbeats_arrive_while_idle(
    live: LiveServer, http: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    run_id = await start_run(http, "scripted/stall")
    async with open_socket(live, f"/api/ws/runs/{run_id}?after=0") as ws:
        beats = 0
        async with asyncio.timeout(5):
            while beats < 2:
                frame = await next_frame(ws, skip_heartbeats=False)
                beats += frame["type"] == "heartbeat"
    assert beats == 2


async def test_a_bad_position_is_refused_with_400(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    run_id = await start_run(http, "scripted/echo")
    async with open_socket(live, f"/api/ws/runs/{run_id}") as ws:
        answer = await command(ws, type="subscribe", ref=1, after="-3")
    assert (answer["type"], answer["status"], answer["code"]) == ("error", 400, "bad_request")


async def test_after_a_restart_the_stream_rebuilt_from_storage_is_the_same(
    tmp_path: Path,
) -> None:
    """A new process has no live log of the run: both transports read the stream rebuilt
    from the database, with the same ids."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'runs.db'}")
    first = create_app(settings)
    await container_of(first).start()
    try:
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as http:
            run_id = await start_run(http, "scripted/echo")
            await wait_done(container_of(first), run_id)
    finally:
        await container_of(first).shutdown()
    second = create_app(settings)
    await container_of(second).start()
    try:
        assert not await container_of(second).log.exists(run_id)
        async with start_live_server(second) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                sse = await collect(http, f"/api/stream/{run_id}", {"Last-Event-ID": "2"})
            async with open_socket(server, f"/api/ws/runs/{run_id}?after=2") as ws:
                rebuilt = await events_until_done(ws)
    finally:
        await container_of(second).shutdown()
    assert triples(rebuilt) == [(f.seq, f.event, f.wire) for f in sse]
    assert rebuilt[0]["id"] > 2
    assert rebuilt[-1]["event"] == "done"


async def test_a_position_past_the_end_starts_at_the_end_at_once(
    live: LiveServer, http: httpx.AsyncClient, scripted: ScriptedProvider, container: Container
) -> None:
    """Issue 23: such a socket saw nothing until the run ended; it starts from the end."""
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(40)], delay=0.05))
    run_id = await start_run(http, "scripted/paced")
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    end = await container.log.last_seq(run_id)
    async with open_socket(live, f"/api/ws/runs/{run_id}") as ws:
        answer = await command(ws, type="subscribe", ref="far", after=end + 1000)
        assert answer["type"] == "ack", answer
        position = answer["result"]["after"]
        assert end <= position < end + 1000
        async with asyncio.timeout(1.5):
            first = (await events_until_done(ws, stop_after=1))[0]
        assert first["id"] > position
    await http.post(f"/api/run/{run_id}/stop")
    await wait_done(container, run_id)

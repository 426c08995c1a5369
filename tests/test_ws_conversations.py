"""WebSocket of a conversation: a message command, then its reply's events as SSE sends
them; resume; request ids and metrics of sockets and their commands."""

from __future__ import annotations

import logging

import httpx
import pytest

from symposia.container import Container
from tests import ws
from tests.fakes.live import LiveServer
from tests.helpers import eventually
from tests.sse import collect
from tests.test_ws_runs import triples
from tests.ws import command, events_until_done, open_socket

settings = ws.settings
http = ws.http


async def test_message_then_reply_as_sse_sends_it_and_resume(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    conversation = (await http.post("/api/conversations", json={"title": "t"})).json()["id"]
    path = f"/api/ws/conversations/{conversation}"
    async with open_socket(live, path) as ws:
        sent = await command(ws, type="message", ref="m", body={"message": "hello there"})
        assert sent["type"] == "ack"
        assert sent["result"]["content"] == "hello there"
        subscribed = await command(ws, type="subscribe", ref="s", after=0)
        assert subscribed["type"] == "ack"
        reply = await events_until_done(ws)
        stop = await command(ws, type="stop", ref="x")
        assert (stop["status"], stop["code"]) == (409, "conflict")  # nothing to stop
    assert reply[-1]["event"] == "done"
    sse = await collect(http, f"/api/conversations/{conversation}/stream?last_event_id=1")
    assert triples(reply[1:]) == [(f.seq, f.event, f.wire) for f in sse]
    async with open_socket(live, f"{path}?after=2") as ws:
        resumed = await events_until_done(ws)
    assert triples(resumed) == triples(reply[2:])


async def test_a_conversation_answered_has_nothing_to_subscribe_to(
    live: LiveServer, http: httpx.AsyncClient
) -> None:
    conversation = (await http.post("/api/conversations", json={"title": "t"})).json()["id"]
    async with open_socket(live, f"/api/ws/conversations/{conversation}") as ws:
        answer = await command(ws, type="subscribe", ref=1)
    over_http = await http.get(f"/api/conversations/{conversation}/stream")
    assert (answer["status"], answer["code"]) == (over_http.status_code, over_http.json()["code"])
    assert answer["status"] == 409


async def test_sockets_and_commands_get_request_ids_log_lines_and_counts(
    live: LiveServer,
    http: httpx.AsyncClient,
    container: Container,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    headers = {"X-Request-Id": "sock-42"}
    async with open_socket(live, "/api/ws/runs/nope", headers) as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Request-Id"] == "sock-42"
        answer = await command(ws, type="stop", ref="r")
        assert answer["request_id"] == "sock-42.1"
    route = "/api/ws/runs/{run_id}"
    sample = container.metrics.registry.get_sample_value
    commands = {"route": route, "command": "stop", "status": "404"}
    assert sample("symposia_websocket_commands_total", commands) == 1

    def logged(message: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == message]

    await eventually(lambda: logged("websocket"), within=2)
    assert len(logged("websocket command")) == 1
    assert logged("websocket")[0].__dict__["close_code"] == 1000
    assert sample("symposia_websockets_total", {"route": route, "code": "1000"}) == 1

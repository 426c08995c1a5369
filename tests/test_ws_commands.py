"""Commands over a run's WebSocket: the HTTP routes' answers, as `ack` or `error` frames."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from symposia.providers.scripted import Script, ScriptedProvider
from tests import ws
from tests.fakes.live import LiveServer
from tests.test_ws_runs import start_run
from tests.ws import command, events_until_done, open_socket

settings = ws.settings
http = ws.http


@pytest.fixture
async def stalled_run(http: httpx.AsyncClient, scripted: ScriptedProvider) -> str:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    return await start_run(http, "scripted/stall", max_turns=4)


def error_of(frame: dict[str, Any]) -> tuple[int, str]:
    assert frame["type"] == "error", frame
    return frame["status"], frame["code"]


def http_error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


async def test_edit_bot_answers_what_the_patch_route_answers(
    live: LiveServer, http: httpx.AsyncClient, stalled_run: str
) -> None:
    run = stalled_run
    async with open_socket(live, f"/api/ws/runs/{run}") as ws:
        ack = await command(ws, type="edit_bot", ref="e1", index=1, body={"temperature": 1.2})
        assert ack["type"] == "ack"
        assert ack["ref"] == "e1"
        assert ack["result"]["bot"]["temperature"] == 1.2
        over_http = await http.get(f"/api/run/{run}")
        assert over_http.json()["bots"][1]["temperature"] == 1.2
        cases: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
            ({"index": 9, "body": {"temperature": 1.0}}, "/bot/9", {"temperature": 1.0}),
            ({"index": 0, "body": {}}, "/bot/0", {}),
            ({"index": 0, "body": {"temperature": 5}}, "/bot/0", {"temperature": 5}),
            ({"index": 0, "body": {"colour": "red"}}, "/bot/0", {"colour": "red"}),
        ]
        for n, (fields, path, body) in enumerate(cases):
            answer = await command(ws, type="edit_bot", ref=n, **fields)
            expected = await http.patch(f"/api/run/{run}{path}", json=body)
            assert error_of(answer) == http_error(expected), (fields, answer)
            assert answer["ref"] == n
        deep: dict[str, Any] = {}
        for _ in range(300):  # issue 22: bounded in depth over the socket too
            deep = {"a": deep}
        answer = await command(ws, type="edit_bot", ref="d", index=0, body={"temperature": deep})
        assert error_of(answer) == (422, "invalid_input")
        assert answer["field"].startswith("body.temperature.a"), answer
        assert "nested deeper" in answer["message"]


async def test_say_and_stop_over_the_socket(
    live: LiveServer, http: httpx.AsyncClient, stalled_run: str
) -> None:
    run = stalled_run
    seen: list[dict[str, Any]] = []
    async with open_socket(live, f"/api/ws/runs/{run}?after=0") as ws:
        said = await command(ws, seen, type="say", ref="s", body={"content": "Consider cost."})
        assert said["type"] == "ack"
        assert said["result"]["message"]["content"] == "Consider cost."
        empty = await command(ws, seen, type="say", ref="s2", body={"content": ""})
        http_empty = await http.post(f"/api/run/{run}/messages", json={"content": ""})
        assert error_of(empty) == http_error(http_empty)
        stopped = await command(ws, seen, type="stop", ref="x")
        assert stopped["type"] == "ack"
        assert stopped["result"]["id"] == run
        if not any(f.get("event") == "done" for f in seen):
            seen += await events_until_done(ws)
        events = [f for f in seen if f["type"] == "event"]
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert events[-2]["data"]["status"] == "cancelled"
        again = await command(ws, type="stop", ref="x2")
        http_again = await http.post(f"/api/run/{run}/stop")
        assert error_of(again) == http_error(http_again)


async def test_unknown_commands_and_bad_frames_are_refused_and_the_socket_stays(
    live: LiveServer, stalled_run: str
) -> None:
    async with open_socket(live, f"/api/ws/runs/{stalled_run}") as ws:
        unknown = await command(ws, type="launch", ref="u")
        assert error_of(unknown) == (400, "unknown_command")
        await ws.send("not json")
        bad = await command(ws, type="nothing", ref=None)  # the first error answers the text
        assert error_of(bad) == (400, "bad_request")
        long_ref = await command(ws, type="stop", ref="r" * 65)
        assert error_of(long_ref) == (422, "invalid_input")
        assert (await command(ws, type="subscribe", ref="ok"))["type"] == "ack"


async def test_an_unknown_run_is_not_found(live: LiveServer) -> None:
    async with open_socket(live, "/api/ws/runs/nope") as ws:
        assert error_of(await command(ws, type="subscribe", ref=1)) == (404, "not_found")
        assert error_of(await command(ws, type="stop", ref=2)) == (404, "not_found")

"""Issue 27: a tool call that needs approval waits (`awaiting_input` with the pending call,
stored) until its owner approves (it runs) or denies (the model reads a denial), or until
HUMAN_TIMEOUT_SECONDS, which denies it. In a conversation and in a run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of
from symposia.events.replay import rebuild_reply
from symposia.tools.toolbox import DENIED
from tests.fakes.live import start_live_server
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.tool_caller import tool_caller
from tests.helpers import wait_done
from tests.sse import Frame, collect
from tests.test_mcp_runs import OPENAI, app, client, folder
from tests.ws import command, events_until_done, next_frame, open_socket

__all__ = ["app", "client", "folder"]  # fixtures used here

TOKYO = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}


async def _pending(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    for _ in range(200):
        listed = await client.get(f"{path}/approvals")
        assert listed.status_code == 200, listed.text
        if listed.json()["items"]:
            return dict(listed.json()["items"][0])
        await asyncio.sleep(0.05)
    raise AssertionError("no call came to wait for approval")


async def _chat(
    client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> tuple[str, str, asyncio.Task[list[Frame]]]:
    fake_provider.responder = tool_caller(TOKYO)
    created = await client.post(
        "/api/conversations", json={"default_model": OPENAI, "tools": ["guarded.convert_time"]}
    )
    assert created.status_code == 201, created.text
    path = f"/api/conversations/{created.json()['id']}"
    said = await client.post(f"{path}/messages", json={"message": "Noon UTC in Tokyo?"})
    reading = asyncio.create_task(collect(client, f"{path}/stream"))
    return path, said.json()["id"], reading


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "denied"])
async def test_a_chat_call_waits_for_its_owner(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer, approve: bool
) -> None:
    path, reply_id, reading = await _chat(client, fake_provider)
    pending = await _pending(client, path)
    assert (pending["server"], pending["tool"], pending["status"]) == (
        "guarded",
        "convert_time",
        "pending",
    )
    assert json.loads(pending["arguments"]) == TOKYO
    decided = await client.post(f"{path}/approvals/{pending['call_id']}", json={"approve": approve})
    assert decided.status_code == 200, decided.text
    again = await client.post(f"{path}/approvals/{pending['call_id']}", json={"approve": True})
    assert again.status_code == 409
    unknown = await client.post(f"{path}/approvals/nope", json={"approve": True})
    assert unknown.status_code == 404

    frames = await asyncio.wait_for(reading, 30)
    kinds = [f.event for f in frames if f.event != "token"]
    assert kinds == [
        "turn_start",
        "tool_call",
        "awaiting_input",
        "tool_result",
        "turn_complete",
        "done",
    ]
    waiting = next(f.data for f in frames if f.event == "awaiting_input")
    assert waiting["call"]["tool"] == "convert_time"
    assert "until" in waiting
    result = next(f.data for f in frames if f.event == "tool_result")
    if approve:
        assert not result["is_error"]
        assert "Asia/Tokyo" in result["content"]
    else:
        assert (result["content"], result["is_error"]) == (DENIED, True)
    assert (await client.get(f"{path}/approvals")).json()["items"] == []
    # Rebuilt from storage, the wait is where it was, with the decision in the transcript.
    reply = await container_of(app).conversations.replies.get(reply_id)
    assert reply is not None
    assert reply.message is not None
    assert reply.message.tool_steps is not None
    assert reply.message.tool_steps[0]["approval"] == ("approved" if approve else "denied")
    rebuilt = {e.seq: e for e in rebuild_reply(reply).events}
    for frame in frames:
        if frame.event in ("tool_call", "awaiting_input", "tool_result"):
            assert rebuilt[int(frame.id)].data == frame.data


async def test_a_call_nobody_decides_is_denied_at_the_timeout(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    container_of(app).approvals.timeout = 1.0
    path, _, reading = await _chat(client, fake_provider)
    pending = await _pending(client, path)
    frames = await asyncio.wait_for(reading, 30)
    result = next(f.data for f in frames if f.event == "tool_result")
    assert (result["content"], result["is_error"]) == (DENIED, True)
    late = await client.post(f"{path}/approvals/{pending['call_id']}", json={"approve": True})
    assert late.status_code == 409
    assert "denied" in late.json()["message"]


async def test_a_run_stopped_while_a_call_waits_leaves_nothing_pending(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    asked: list[object] = []
    answer = tool_caller(TOKYO)
    fake_provider.responder = lambda request: asked.append(request) or answer(request)
    bots = [
        {"name": "Ann", "model": OPENAI, "tools": ["guarded.convert_time"]},
        {"name": "Bob", "model": OPENAI},
    ]
    created = await client.post("/api/run", json={"topic": "Noon?", "bots": bots})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    pending = await _pending(client, f"/api/run/{run_id}")
    stopped = await client.post(f"/api/run/{run_id}/stop")
    assert stopped.status_code == 200, stopped.text
    events = await wait_done(container_of(app), run_id, timeout=30)
    assert events[-1].data["status"] == "cancelled"
    assert not [e for e in events if e.type == "tool_result"]  # never run
    listed = await client.get(f"/api/run/{run_id}/approvals")
    assert listed.json()["items"] == []
    late = await client.post(
        f"/api/run/{run_id}/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert late.status_code == 409
    assert "denied" in late.json()["message"]
    run = (await client.get(f"/api/run/{run_id}")).json()
    assert run["status"] == "cancelled"
    stored = await container_of(app).approvals.store.get(f"run:{run_id}", pending["call_id"])
    assert stored is not None
    assert stored.decided_by == "run_cancelled"
    stored_run = await container_of(app).run_repository.get(run_id)
    assert stored_run is not None
    assert [(m.author, m.status.value) for m in stored_run.messages] == [("Ann", "partial")]
    assert len([e for e in events if e.type == "turn_complete"]) == 1
    assert len(asked) == 1  # the model was asked once


async def test_a_run_waits_for_approval(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(TOKYO)
    body = {
        "topic": "What is noon UTC in Tokyo?",
        "max_turns": 1,
        "bots": [
            {"name": "Ann", "model": OPENAI, "tools": ["guarded.convert_time"]},
            {"name": "Bob", "model": OPENAI},
        ],
    }
    created = await client.post("/api/run", json=body)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    pending = await _pending(client, f"/api/run/{run_id}")
    assert pending["name"] == "Ann"
    other = await client.post(
        f"/api/run/nope/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert other.status_code == 404
    decided = await client.post(
        f"/api/run/{run_id}/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert decided.status_code == 200
    events = await wait_done(container_of(app), run_id, timeout=30)
    (waiting,) = [e.data for e in events if e.type == "awaiting_input"]
    assert waiting["name"] == "Ann"
    assert waiting["call"]["server"] == "guarded"
    (result,) = [e.data for e in events if e.type == "tool_result"]
    assert "Asia/Tokyo" in result["content"]


async def test_a_call_is_approved_over_the_websocket(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(TOKYO)
    body = {
        "topic": "Noon UTC in Tokyo?",
        "max_turns": 1,
        "bots": [
            {"name": "Ann", "model": OPENAI, "tools": ["guarded.convert_time"]},
            {"name": "Bob", "model": OPENAI},
        ],
    }
    run_id = (await client.post("/api/run", json=body)).json()["id"]
    async with (
        start_live_server(app) as live,
        open_socket(live, f"/api/ws/runs/{run_id}?after=0") as socket,
    ):
        seen: list[dict[str, Any]] = []
        while not any(f.get("event") == "awaiting_input" for f in seen):
            seen.append(await next_frame(socket))
        waiting = next(f for f in seen if f.get("event") == "awaiting_input")["data"]
        bad = await command(socket, type="approve", ref="b", call_id=waiting["call"]["id"])
        assert bad["type"] == "error"
        assert bad["field"] == "approve"
        answer = await command(
            socket, seen, type="approve", ref="a", call_id=waiting["call"]["id"], approve=True
        )
        assert answer["type"] == "ack", answer
        assert answer["result"] == {"call_id": waiting["call"]["id"], "status": "approved"}
        if not any(f.get("event") == "done" for f in seen):
            seen += await events_until_done(socket)
    (result,) = [f["data"] for f in seen if f.get("event") == "tool_result"]
    assert not result["is_error"]
    assert "Asia/Tokyo" in result["content"]

"""Issue 27 in conversations: a conversation's `tools` may name MCP servers beside the
client's functions, and a panel's specialist may have its own. A reply runs the calls
(several from one answer at once), streams `tool_call` and `tool_result`, and answers
with their results; the stream rebuilt from storage has them at the same ids."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from symposia.app import container_of
from symposia.events.replay import rebuild_reply
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.tool_caller import tool_caller
from tests.sse import Frame, collect
from tests.test_mcp_runs import ANTHROPIC, OPENAI, app, client, folder

__all__ = ["app", "client", "folder"]  # fixtures used here


async def _ask(
    client: httpx.AsyncClient, body: dict[str, Any], question: str
) -> tuple[str, list[Frame]]:
    """The reply's id (the question's), and its stream."""
    created = await client.post("/api/conversations", json=body)
    assert created.status_code == 201, created.text
    path = f"/api/conversations/{created.json()['id']}"
    said = await client.post(f"{path}/messages", json={"message": question})
    assert said.status_code == 201, said.text
    return said.json()["id"], await collect(client, f"{path}/stream")


async def test_a_chat_turn_with_parallel_calls(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(
        {
            "timezone": "UTC",
            "source_timezone": "UTC",
            "target_timezone": "Asia/Tokyo",
            "time": "12:00",
        },
        calls=2,
    )
    body = {"default_model": OPENAI, "tools": ["time"]}
    reply_id, frames = await _ask(client, body, "What time is it in Tokyo at noon UTC?")
    kinds = [f.event for f in frames]
    assert [k for k in kinds if k != "token"] == [
        "turn_start",
        "tool_call",
        "tool_call",
        "tool_result",
        "tool_result",
        "turn_complete",
        "done",
    ], kinds
    assert kinds[1] == "token"
    assert kinds[-3] == "token"
    calls = [f.data for f in frames if f.event == "tool_call"]
    assert {c["tool"] for c in calls} == {"get_current_time", "convert_time"}
    results = {f.data["id"]: f.data for f in frames if f.event == "tool_result"}
    by_tool = {c["tool"]: results[c["id"]] for c in calls}
    assert not by_tool["convert_time"]["is_error"]
    assert "Asia/Tokyo" in by_tool["convert_time"]["content"]
    assert json.loads(by_tool["get_current_time"]["content"])["timezone"] == "UTC"
    complete = frames[-2].data
    assert complete["content"].startswith("Let me check.I found: ")
    assert "tool_calls" not in complete  # nothing left for the client to run
    # The second model call carried both results, after the answer that asked for them.
    second = [r for r in fake_provider.requests if r.method == "POST"][1].body
    assert [m["role"] for m in second["messages"]][-3:] == ["assistant", "tool", "tool"]

    reply = await container_of(app).conversations.replies.get(reply_id)
    assert reply is not None
    rebuilt = {e.seq: e for e in rebuild_reply(reply).events}
    for frame in frames:
        if frame.event in ("tool_call", "tool_result", "turn_complete"):
            assert rebuilt[int(frame.id)].type == frame.event
            assert rebuilt[int(frame.id)].data == frame.data


async def test_a_panel_specialist_calls_its_tool(
    client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(
        {"timezone": "Europe/Paris"},
        plain='{"agent": "clock", "reason": "a question of time"}',
    )
    body = {
        "default_model": OPENAI,
        "panel": {
            "agents": [
                {
                    "name": "clock",
                    "description": "Tells the time.",
                    "model": ANTHROPIC,
                    "tools": ["time.get_current_time"],
                },
                {"name": "poet", "description": "Writes verse.", "model": OPENAI},
            ]
        },
    }
    _, frames = await _ask(client, body, "What time is it in Paris?")
    assert frames[0].event == "routing"
    assert frames[0].data["agent"] == "clock"
    (call,) = [f.data for f in frames if f.event == "tool_call"]
    assert (call["name"], call["server"], call["tool"]) == ("clock", "time", "get_current_time")
    (result,) = [f.data for f in frames if f.event == "tool_result"]
    assert "Europe/Paris" in result["content"]
    assert "Europe/Paris" in frames[-2].data["content"]
    # Only the specialist was offered the tool, in Anthropic's format.
    offered = [r.body.get("tools") for r in fake_provider.requests if r.method == "POST"]
    assert [t["name"] for t in offered[1]] == ["time__get_current_time"]


async def test_conversation_tools_that_cannot_be_used_are_refused(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post(
        "/api/conversations", json={"default_model": OPENAI, "tools": ["secret"]}
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "tools"
    panel = {
        "agents": [{"name": "a", "description": "d", "model": "local/smollm2", "tools": ["time"]}]
    }
    local = await client.post("/api/conversations", json={"default_model": OPENAI, "panel": panel})
    assert local.status_code == 422
    assert local.json()["field"] == "panel.agents.0.tools"


async def test_parallel_calls_run_at_once(
    client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller({"seconds": 1.5}, calls=3, same=True)
    _, frames = await _ask(client, {"default_model": OPENAI, "tools": ["faults.slow"]}, "Wait.")
    results = [f.data["content"].split() for f in frames if f.event == "tool_result"]
    assert [r[0] for r in results] == ["slept"] * 3
    starts, ends = [float(r[1]) for r in results], [float(r[2]) for r in results]
    assert max(starts) < min(ends)  # all three were running at once


async def test_a_model_that_never_stops_calling_is_cut_at_max_tool_steps(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    container_of(app).conversations.tasks.max_tool_steps = 2
    fake_provider.responder = tool_caller({"text": "again"}, always=True)
    _, frames = await _ask(client, {"default_model": OPENAI, "tools": ["faults.echo"]}, "Go.")
    assert [f.event for f in frames].count("tool_result") == 2
    assert len([r for r in fake_provider.requests if r.method == "POST"]) == 3
    complete = frames[-2].data
    assert complete["status"] == "complete"
    assert "tool_calls" not in complete  # the third round's calls were not run, nor the client's

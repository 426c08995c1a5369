"""Issue 13, point 1 for conversations: a conversation's models may call the client's
tools. A reply streams each call as a `tool_call` event and keeps it with the answer; the
client sends each result as a message of role `tool`; the next reply continues from it.
Rebuilt from storage, the stream has the same ids; what cannot work is refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.events.replay import rebuild_reply
from symposia.providers.base import ToolCall
from symposia.providers.scripted import Script, ScriptedProvider
from tests.sse import Frame, collect

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = ToolCall("call_1", "get_weather", '{"city": "Paris"}')


@pytest.fixture(autouse=True)
def _weatherman(scripted: ScriptedProvider) -> None:
    answer = Script(chunks=["Sunny ", "in ", "Paris."])
    scripted.add_script(
        "weatherman", Script(chunks=["Let me look."], tool_calls=[CALL], after_tool=answer)
    )


async def _conversation(client: httpx.AsyncClient, **extra: Any) -> str:
    body = {"default_model": "scripted/weatherman", "tools": [WEATHER], **extra}
    created = await client.post("/api/conversations", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["tools"] == [WEATHER]
    return str(created.json()["id"])


async def _say(client: httpx.AsyncClient, path: str, **body: Any) -> httpx.Response:
    return await client.post(f"{path}/messages", json=body)


async def test_a_tool_loop_in_a_conversation(
    client: httpx.AsyncClient, scripted: ScriptedProvider, container: Container
) -> None:
    path = f"/api/conversations/{await _conversation(client)}"
    question = await _say(client, path, message="Weather in Paris?")
    assert question.status_code == 201
    frames = await collect(client, f"{path}/stream")
    assert [f.event for f in frames] == [
        "turn_start",
        "token",
        "tool_call",
        "turn_complete",
        "done",
    ]
    assert frames[2].data == {
        "name": "assistant",
        "id": "call_1",
        "function": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    complete = frames[3].data
    assert complete["content"] == "Let me look."
    assert complete["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert frames[-1].data["status"] == "completed"
    (sent,) = [r for r in scripted.requests if r.model == "weatherman"]
    assert [t.name for t in sent.tools] == ["get_weather"]

    result = await _say(
        client, path, role="tool", tool_call_id="call_1", message=json.dumps({"sky": "clear"})
    )
    assert result.status_code == 201, result.text
    assert result.json()["tool_call_id"] == "call_1"
    answer = await collect(client, f"{path}/stream")
    assert "".join(f.data["delta"] for f in answer if f.event == "token") == "Sunny in Paris."
    asked = [r for r in scripted.requests if r.model == "weatherman"][-1]
    assert [(m.role, m.tool_call_id) for m in asked.messages] == [
        ("user", None),
        ("assistant", None),
        ("tool", "call_1"),
    ]
    assert asked.messages[1].tool_calls == (CALL,)

    items = (await client.get(f"{path}/messages")).json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant", "tool", "assistant"]
    assert items[1]["tool_calls"][0]["id"] == "call_1"
    assert items[2]["tool_call_id"] == "call_1"

    # Rebuilt from storage, the first reply has the ids it had live.
    reply = await container.conversations.replies.get(question.json()["id"])
    assert reply is not None
    rebuilt = {e.seq: e for e in rebuild_reply(reply).events}
    for frame in frames:
        if rebuilt[frame.seq].type != "snapshot":
            assert rebuilt[frame.seq].type == frame.event
            if frame.event in {"tool_call", "turn_complete", "done"}:
                assert _same(rebuilt[frame.seq].data, frame)


def _same(data: dict[str, Any], frame: Frame) -> bool:
    live = dict(frame.data)
    return {k: v for k, v in data.items() if k != "usage"} == {
        k: v for k, v in live.items() if k != "usage"
    }


async def test_tool_results_must_answer_a_pending_call_once(client: httpx.AsyncClient) -> None:
    path = f"/api/conversations/{await _conversation(client)}"
    await _say(client, path, message="Weather?")
    await collect(client, f"{path}/stream")
    unknown = await _say(client, path, role="tool", tool_call_id="call_9", message="x")
    assert unknown.status_code == 422
    assert "call_9" in unknown.json()["message"]
    missing = await _say(client, path, role="tool", message="x")
    assert missing.status_code == 422
    first = await _say(client, path, role="tool", tool_call_id="call_1", message="sunny")
    assert first.status_code == 201
    again = await _say(client, path, role="tool", tool_call_id="call_1", message="sunny")
    assert again.status_code == 409
    items = (await client.get(f"{path}/messages")).json()["items"]
    assert [m["role"] for m in items] == ["user", "assistant", "tool"]  # nothing else kept


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"default_model": "local/smollm2"}, "default_model"),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        (
            {"panel": {"agents": [{"name": "a", "description": "b", "model": "local/smollm2"}]}},
            "panel.agents.0.model",
        ),
    ],
)
async def test_what_cannot_call_tools_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/conversations",
        json={"default_model": "scripted/weatherman", "tools": [WEATHER], **body},
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    assert (await client.get("/api/conversations")).json()["items"] == []


async def test_tools_are_changed_and_removed_with_patch(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    path = f"/api/conversations/{await _conversation(client)}"
    refused = await client.patch(path, json={"default_model": "local/smollm2"})
    assert refused.status_code == 422  # the local model cannot call the tools it has
    removed = await client.patch(path, json={"tools": None})
    assert removed.json()["tools"] is None
    await _say(client, path, message="Weather?")
    await collect(client, f"{path}/stream")
    assert scripted.requests[-1].tools == ()  # no tools were offered


async def test_in_a_panel_tool_results_go_back_to_the_agent_that_called(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script(
        "router", Script(chunks=['{"agent": "weather", "reason": "a weather question"}'])
    )
    panel = {
        "agents": [
            {"name": "chat", "description": "Small talk.", "model": "scripted/echo"},
            {"name": "weather", "description": "The weather.", "model": "scripted/weatherman"},
        ]
    }
    conversation_id = await _conversation(client, default_model="scripted/router", panel=panel)
    path = f"/api/conversations/{conversation_id}"
    await _say(client, path, message="Weather in Paris?")
    first = await collect(client, f"{path}/stream")
    assert first[0].data["agent"] == "weather"
    assert [f.data["name"] for f in first if f.event == "tool_call"] == ["weather"]
    await _say(client, path, role="tool", tool_call_id="call_1", message="clear sky")
    second = await collect(client, f"{path}/stream")
    assert second[0].event == "routing"
    assert second[0].data == {
        "agent": "weather",
        "reason": "the answer to its tool calls",
        "attempts": 0,
        "fallback": False,
        "model": "scripted/router",
    }
    assert "".join(f.data["delta"] for f in second if f.event == "token") == "Sunny in Paris."
    assert len([r for r in scripted.requests if r.model == "router"]) == 1  # not asked again
    weatherman = [r for r in scripted.requests if r.model == "weatherman"]
    assert [t.name for t in weatherman[-1].tools] == ["get_weather"]

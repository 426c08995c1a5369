"""Seed 001, the supervisor chat backend: its curls and endpoint list, as its front end
sends them (docs/seeds.md). Its stream is unnamed `data:` chunks typed `token`,
`tool_call`, `complete` and `error`; it names its own conversation ids and sends the
earlier messages as `history`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from symposia.errors import ProviderError
from symposia.providers.base import ChatMessage, CompletionRequest
from symposia.providers.bedrock import BedrockAdapter
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.sse import Frame, frames
from tests.test_conversation_tools import CALL, WEATHER
from tests.test_panel_chat import _panel_conversation, _router

SEED_CHUNKS = {"token", "tool_call", "complete", "error"}


async def _stream(client: httpx.AsyncClient, body: dict[str, Any]) -> list[Frame]:
    out: list[Frame] = []
    async with client.stream("POST", "/api/chat/stream", json=body) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for frame in frames(response):
            if frame.comment is None:
                out.append(frame)
    return out


async def test_the_seeds_curl_streams_its_chunks(client: httpx.AsyncClient) -> None:
    """`{"message":"Hello","conversation_id":"test","user_id":"test","history":[]}`, the
    document's own curl: 200, unnamed chunks of its four types, the answer complete."""
    body = {"message": "Hello", "conversation_id": "test", "user_id": "test", "history": []}
    chunks = await _stream(client, body)
    assert chunks
    assert all(c.event is None for c in chunks)
    types = [c.data["type"] for c in chunks]
    assert set(types) <= SEED_CHUNKS
    assert types[-1] == "complete"
    assert "token" in types
    text = "".join(c.data["content"] for c in chunks if c.data["type"] == "token")
    complete = chunks[-1].data
    assert complete["content"] == text
    assert "Hello" in text
    assert complete["conversation_id"] == "test"
    assert complete["message_id"]

    # GET /api/conversations/{id}: the conversation with its messages.
    got = await client.get("/api/conversations/test")
    assert got.status_code == 200
    messages = got.json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hello"),
        ("assistant", text),
    ]
    # The same conversation_id again continues it.
    await _stream(client, {**body, "message": "Again"})
    again = (await client.get("/api/conversations/test")).json()["messages"]
    assert [m["role"] for m in again] == ["user", "assistant", "user", "assistant"]


@pytest.mark.parametrize("conversation_id", ["ada-1", None])
async def test_history_is_the_new_conversations_context(
    client: httpx.AsyncClient, scripted: ScriptedProvider, conversation_id: str | None
) -> None:
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada.", "timestamp": "2025-01-01T00:00:00Z"},
    ]
    body: dict[str, Any] = {"message": "What is my name?", "user_id": "u1", "history": history}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    chunks = await _stream(client, body)
    asked = scripted.requests[-1].messages
    contents = [m.content for m in asked]
    assert "My name is Ada." in contents
    assert "Hello Ada." in contents
    assert contents[-1] == "What is my name?"
    made = chunks[-1].data["conversation_id"]
    if conversation_id is not None:
        assert made == conversation_id
    stored = (await client.get(f"/api/conversations/{made}")).json()["messages"]
    assert [m["content"] for m in stored][:3] == [
        "My name is Ada.",
        "Hello Ada.",
        "What is my name?",
    ]


async def test_a_failing_model_is_an_error_chunk(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("broken", Script(chunks=["x"], fail_after=0))
    created = await client.post("/api/conversations", json={"default_model": "scripted/broken"})
    conversation_id = created.json()["id"]
    chunks = await _stream(
        client, {"message": "Hi", "conversation_id": conversation_id, "user_id": "u", "history": []}
    )
    errors = [c.data for c in chunks if c.data["type"] == "error"]
    assert errors
    assert errors[0]["message"]
    assert {c.data["type"] for c in chunks} <= SEED_CHUNKS


async def test_a_bad_new_conversation_id_is_refused(client: httpx.AsyncClient) -> None:
    body = {"message": "Hi", "conversation_id": "no spaces/here", "user_id": "u", "history": []}
    response = await client.post("/api/chat/stream", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "conversation_id"


async def test_the_other_endpoints_of_its_list(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    created = await client.post("/api/conversations", json={})
    assert created.status_code == 201
    conversation_id = created.json()["id"]
    listed = (await client.get("/api/conversations")).json()["items"]
    assert conversation_id in [c["id"] for c in listed]
    assert (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"] == []
    assert (await client.delete(f"/api/conversations/{conversation_id}")).status_code == 204
    assert (await client.get(f"/api/conversations/{conversation_id}")).status_code == 404


class TestTurnedOff:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url=database_url, compat_supervisor_chat=False)

    async def test_its_body_is_refused_by_name(self, client: httpx.AsyncClient) -> None:
        body = {"message": "Hello", "conversation_id": "test", "user_id": "test", "history": []}
        response = await client.post("/api/chat/stream", json=body)
        assert response.status_code == 422
        assert "COMPAT_SUPERVISOR_CHAT" in response.json()["message"]


async def test_a_missing_aws_credential_is_said_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Bedrock without credentials: a not-configured error naming the AWS variables, not
    a connection error suggesting to check a base URL."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    adapter = BedrockAdapter("us-east-1", endpoint_url="http://127.0.0.1:9")
    request = CompletionRequest("amazon.nova-lite-v1:0", [ChatMessage("user", "hi")])
    with pytest.raises(ProviderError) as caught:
        async for _ in adapter.stream(request):
            pass
    failure = caught.value.failure
    assert failure.code == "provider_not_configured"
    assert "AWS_ACCESS_KEY_ID" in (failure.suggestion or "")
    assert "base URL" not in (failure.suggestion or "")


async def test_the_supervisor_routes_and_its_chunks_stay_the_seeds(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    """A panel conversation (the supervisor and its specialists): the routing and the
    turn's start are Symposia's events, not chunks of the seed; the answer is."""
    scripted.add_script("router", Script(respond=_router))
    scripted.add_script("ledger", Script(chunks=["Your ", "refund ", "is ", "on ", "its ", "way."]))
    conversation_id = await _panel_conversation(client)
    body = {"message": "my invoice is wrong", "conversation_id": conversation_id}
    chunks = await _stream(client, {**body, "user_id": "u", "history": []})
    assert {c.data["type"] for c in chunks} == {"token", "complete"}
    assert chunks[-1].data["content"] == "Your refund is on its way."
    assert chunks[-1].data["name"] == "billing"


async def test_a_tool_call_is_a_tool_call_chunk(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    answer = Script(chunks=["Sunny."])
    scripted.add_script(
        "weatherman", Script(chunks=["Let me look."], tool_calls=[CALL], after_tool=answer)
    )
    body = {"default_model": "scripted/weatherman", "tools": [WEATHER]}
    conversation_id = (await client.post("/api/conversations", json=body)).json()["id"]
    chunks = await _stream(
        client,
        {"message": "Weather?", "conversation_id": conversation_id, "user_id": "u", "history": []},
    )
    assert [c.data["type"] for c in chunks if c.data["type"] != "token"] == [
        "tool_call",
        "complete",
    ]
    call = next(c.data for c in chunks if c.data["type"] == "tool_call")
    assert (call["id"], call["function"], call["arguments"]) == (
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )

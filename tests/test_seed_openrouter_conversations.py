"""Seed 003, the OpenRouter conversation server: every curl and endpoint of its document
at the root (docs/seeds.md), its shapes checked field by field. The flow is tried with
scripted models; the curls verbatim, with the seed's own model ids (`openai/gpt-3.5-turbo`,
OpenRouter's), under the seed's `.env` with OpenRouter's base URL at the fake upstream."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from tests.conftest import make_settings, settings_from_dotenv
from tests.fakes.provider_server import FakeProviderServer
from tests.sse import frames

MODEL = "scripted/echo"
OTHER = "scripted/other"
CONVERSATION_FIELDS = {"id", "default_model", "created_at", "updated_at"}
MESSAGE_FIELDS = {"id", "role", "content", "model", "timestamp"}
# What OpenRouter lists, in part: OpenAI's models under its own names.
OPENROUTER_MODELS = ["openai/gpt-3.5-turbo", "openai/gpt-4", "anthropic/claude-3-opus"]


@pytest.fixture(autouse=True)
def _other(scripted: ScriptedProvider) -> None:
    scripted.add_script("other", Script(chunks=["from", " other"]))


def _is_time(value: str) -> bool:
    datetime.fromisoformat(value)
    return True


async def _create(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    response = await client.post(
        "/conversations", json={"default_model": MODEL} if body is None else body
    )
    assert response.status_code == 200, response.text
    conversation = response.json()
    assert conversation.keys() >= CONVERSATION_FIELDS
    assert all(_is_time(conversation[k]) for k in ("created_at", "updated_at"))
    conversation_id: str = conversation["id"]
    return conversation_id


async def _stream(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """The stream's `data:` payloads, as the seed's client parses them."""
    out: list[dict[str, Any]] = []
    async with client.stream("GET", path) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        async for frame in frames(response):
            if frame.data_lines:
                assert frame.event is None
                out.append(frame.data)
    return out


async def test_usage_flow_create_send_stream(client: httpx.AsyncClient) -> None:
    """Usage flow 1-3: create, send a message, stream the answer."""
    conversation_id = await _create(client)
    sent = await client.post(
        f"/conversations/{conversation_id}/messages", json={"message": "Hello, how are you?"}
    )
    assert sent.status_code == 200, sent.text
    message = sent.json()
    assert message.keys() >= MESSAGE_FIELDS
    assert (message["role"], message["content"], message["model"]) == (
        "user",
        "Hello, how are you?",
        None,
    )
    assert _is_time(message["timestamp"])
    payloads = await _stream(client, f"/conversations/{conversation_id}/stream")
    *contents, done = payloads
    assert contents
    assert all(set(p) == {"content"} for p in contents)
    assert done == {"done": True, "message_id": done["message_id"]}
    assert done["message_id"]
    text = "".join(p["content"] for p in contents)
    assert "Hello, how are you?" in text

    listed = (await client.get(f"/conversations/{conversation_id}/messages")).json()
    assert listed["conversation_id"] == conversation_id
    assert [(m["role"], m["content"]) for m in listed["messages"]] == [
        ("user", "Hello, how are you?"),
        ("assistant", text),
    ]
    assert all(m.keys() >= MESSAGE_FIELDS for m in listed["messages"])
    assert listed["messages"][1]["id"] == done["message_id"]
    assert listed["messages"][1]["model"] == MODEL


async def test_stream_with_model_override(client: httpx.AsyncClient) -> None:
    conversation_id = await _create(client)
    await client.post(f"/conversations/{conversation_id}/messages", json={"message": "Hi"})
    payloads = await _stream(client, f"/conversations/{conversation_id}/stream?model={OTHER}")
    assert "".join(p.get("content", "") for p in payloads) == "from other"
    # A per-message override (the message's `model`) works as well.
    await client.post(
        f"/conversations/{conversation_id}/messages", json={"message": "Hi", "model": OTHER}
    )
    payloads = await _stream(client, f"/conversations/{conversation_id}/stream")
    assert "".join(p.get("content", "") for p in payloads) == "from other"


async def test_root_models_list_get_patch_delete(client: httpx.AsyncClient) -> None:
    conversation_id = await _create(client)
    await client.post(f"/conversations/{conversation_id}/messages", json={"message": "Hi"})
    await _stream(client, f"/conversations/{conversation_id}/stream")

    root = await client.get("/")
    assert root.status_code == 200
    body = root.json()
    assert body["status"] == "online"
    assert isinstance(body["service"], str)
    assert isinstance(body["version"], str)
    assert (body["conversations"], body["total_messages"]) == (1, 2)
    # A browser still gets the page.
    page = await client.get("/", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")

    first = (await client.get("/models")).json()
    assert first["cached"] is False
    assert any(m["id"] == "scripted/echo" for m in first["models"])
    assert all({"id", "name"} <= m.keys() for m in first["models"])
    assert (await client.get("/models")).json()["cached"] is True

    listed = (await client.get("/conversations")).json()
    assert set(listed) == {"conversations"}
    (item,) = listed["conversations"]
    assert item.keys() >= CONVERSATION_FIELDS
    assert item["message_count"] == 2

    got = (await client.get(f"/conversations/{conversation_id}")).json()
    assert got["id"] == conversation_id
    assert got["default_model"] == MODEL
    patched = await client.patch(f"/conversations/{conversation_id}", json={"default_model": OTHER})
    assert patched.status_code == 200
    assert patched.json()["default_model"] == OTHER

    deleted = await client.delete(f"/conversations/{conversation_id}")
    assert deleted.status_code == 200
    missing = await client.get(f"/conversations/{conversation_id}")
    assert missing.status_code == 404
    assert missing.json()["detail"]
    assert (await client.get(f"/conversations/{conversation_id}/messages")).status_code == 404


async def test_bad_input_is_400_and_a_failing_model_502(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    conversation_id = await _create(client)
    empty = await client.post(f"/conversations/{conversation_id}/messages", json={})
    assert empty.status_code == 400
    assert empty.json()["detail"]
    unknown = await client.post("/conversations", json={"default_model": "nosuch/model"})
    assert unknown.status_code == 400, unknown.text

    scripted.add_script("broken", Script(chunks=["x"], fail_after=0))
    await client.post(
        f"/conversations/{conversation_id}/messages",
        json={"message": "Hi", "model": "scripted/broken"},
    )
    failed = await client.get(f"/conversations/{conversation_id}/stream")
    assert failed.status_code == 502, failed.text
    assert failed.json()["detail"]


def seed_dotenv(upstream: FakeProviderServer) -> str:
    """The seed's `.env`, as its document gives it (docs/seeds.md), with OpenRouter's base
    URL at the fake; DEV_MODE because the seed's clients send no credential."""
    return (
        "OPENROUTER_API_KEY=sk-or-seed\n"
        f"OPENROUTER_BASE_URL={upstream.openai_base_url}\n"
        "PORT=8001\n"
        "MODEL_NAME=openai/gpt-3.5-turbo\n"
        "APP_TITLE=Open Chat API\n"
        "APP_URL=http://localhost:8001\n"
        "DEV_MODE=true\n"
    )


class TestUnderTheSeedsEnv:
    """OpenRouter's ids reach OpenRouter under that exact name, as the seed sent them."""

    @pytest.fixture
    def settings(self, database_url: str, fake_provider: FakeProviderServer) -> Settings:
        fake_provider.openai_models = OPENROUTER_MODELS
        # CHAT_TITLES off, as docs/seeds.md advises for the seed's one call per message.
        return settings_from_dotenv(
            seed_dotenv(fake_provider), database_url=database_url, chat_titles=False
        )

    async def test_the_documents_curls_with_its_model_ids(
        self, client: httpx.AsyncClient, fake_provider: FakeProviderServer
    ) -> None:
        conversation_id = await _create(client, {"default_model": "openai/gpt-3.5-turbo"})
        await client.post(
            f"/conversations/{conversation_id}/messages", json={"message": "Hello, how are you?"}
        )
        payloads = await _stream(client, f"/conversations/{conversation_id}/stream")
        assert "".join(p.get("content", "") for p in payloads) == "Hello, world!"
        await client.post(f"/conversations/{conversation_id}/messages", json={"message": "More"})
        await _stream(client, f"/conversations/{conversation_id}/stream?model=openai/gpt-4")
        requests = fake_provider.requests_to("openai")
        assert [r.body["model"] for r in requests] == ["openai/gpt-3.5-turbo", "openai/gpt-4"]
        assert {r.headers["authorization"] for r in requests} == {"Bearer sk-or-seed"}
        assert requests[0].headers["x-title"] == "Open Chat API"
        assert requests[0].headers["http-referer"] == "http://localhost:8001"

    async def test_model_name_is_the_default_model(
        self, client: httpx.AsyncClient, fake_provider: FakeProviderServer
    ) -> None:
        created = (await client.post("/conversations", json={})).json()
        assert created["default_model"] == "openrouter/openai/gpt-3.5-turbo"
        conversation_id = created["id"]
        await client.post(f"/conversations/{conversation_id}/messages", json={"message": "Hi"})
        await _stream(client, f"/conversations/{conversation_id}/stream")
        (request,) = fake_provider.requests_to("openai")
        assert request.body["model"] == "openai/gpt-3.5-turbo"


class TestTurnedOff:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url=database_url, compat_openrouter_routes=False)

    async def test_root_routes_are_gone_and_root_is_ours(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/conversations")).status_code == 404
        assert (await client.get("/models")).status_code == 404
        assert (await client.get("/")).json()["status"] == "ok"

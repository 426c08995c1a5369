"""Issue 10, point 5: bad client input was answered as a database outage (503
`database_unavailable`, Retry-After: 5), and left empty conversations behind.

A NUL in any stored field is a 422 with nothing written; an absurd `offset` is a 422; an
id holding a NUL is simply not found (404); a database that is really down is still 503.
"""

from __future__ import annotations

import socket
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from symposia.container import Container
from symposia.domain.models import Message
from symposia.providers.scripted import ScriptedProvider
from symposia.storage.failures import is_connection_failure
from tests.fakes.live import free_port

NUL = "a\x00b"
BOTS = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]


def _bots(**change: Any) -> list[dict[str, Any]]:
    return [{**BOTS[0], **change}, BOTS[1]]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}], **fields}


CREATES: list[tuple[str, str, dict[str, Any] | str]] = [
    ("run topic", "/api/run", {"topic": NUL}),
    ("bot name", "/api/run", {"topic": "t", "bots": _bots(name=NUL)}),
    ("bot prompt", "/api/run", {"topic": "t", "bots": _bots(prompt=NUL)}),
    ("bot model", "/api/run", {"topic": "t", "bots": _bots(model="scripted/" + NUL)}),
    ("bot provider", "/api/run", {"topic": "t", "bots": _bots(provider=NUL)}),
    ("fallback", "/api/run", {"topic": "t", "bots": _bots(fallbacks=[NUL])}),
    ("title", "/api/conversations", {"title": NUL}),
    ("system prompt", "/api/conversations", {"system_prompt": NUL}),
    ("default model", "/api/conversations", {"default_model": "scripted/" + NUL}),
    ("chat message", "/api/chat/stream", {"message": NUL}),
    ("chat model", "/api/chat/stream", {"message": "hi", "model": "scripted/" + NUL}),
    ("chat conversation id", "/api/chat/stream", {"message": "hi", "conversation_id": NUL}),
    ("surrogate", "/api/chat/stream", '{"message": "a\\ud800b"}'),  # raw: JSON escapes it
    ("v1 content", "/v1/chat/completions", _chat(messages=[{"role": "user", "content": NUL}])),
    (
        "v1 content part",
        "/v1/chat/completions",
        _chat(messages=[{"role": "user", "content": [{"type": "text", "text": NUL}]}]),
    ),
    ("v1 model", "/v1/chat/completions", _chat(model="scripted/" + NUL)),
]


async def _nothing_stored(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/runs")).json()["items"] == []
    assert (await client.get("/api/conversations")).json()["items"] == []


@pytest.mark.parametrize(("name", "path", "body"), CREATES, ids=[c[0] for c in CREATES])
async def test_a_nul_in_a_stored_field_is_422_and_writes_nothing(
    client: httpx.AsyncClient, name: str, path: str, body: dict[str, Any] | str
) -> None:
    headers = {"X-Symposia-Conversation": "new"} if "v1" in path else {}
    if isinstance(body, str):
        headers["Content-Type"] = "application/json"
        response = await client.post(path, content=body, headers=headers)
    else:
        response = await client.post(path, json=body, headers=headers)
    assert response.status_code in (400, 422), response.text  # /v1 speaks OpenAI's 400
    assert "NUL" in response.text or name == "surrogate"  # pydantic refuses those itself
    await _nothing_stored(client)


async def test_a_nul_in_an_update_is_422_and_changes_nothing(client: httpx.AsyncClient) -> None:
    conversation = (await client.post("/api/conversations", json={"title": "t"})).json()
    path = f"/api/conversations/{conversation['id']}"
    for change in ({"title": NUL}, {"system_prompt": NUL}, {"default_model": "scripted/" + NUL}):
        assert (await client.patch(path, json=change)).status_code == 422
    assert (await client.post(f"{path}/messages", json={"message": NUL})).status_code == 422
    assert (await client.get(path)).json() == {**conversation, "messages": []}  # GET adds them
    assert (await client.get(f"{path}/messages")).json()["items"] == []
    stream = await client.get(f"{path}/stream", params={"model": "scripted/" + NUL})
    assert stream.status_code == 422
    run = (await client.post("/api/run", json={"topic": "t", "bots": BOTS})).json()
    for change in ({"prompt": NUL}, {"model": "scripted/" + NUL}):
        patched = await client.patch(f"/api/run/{run['id']}/bot/0", json=change)
        assert patched.status_code == 422


@pytest.mark.parametrize(
    "path", ["/api/runs", "/api/conversations", "/api/conversations/{id}/messages"]
)
async def test_an_offset_beyond_64_bits_is_422(client: httpx.AsyncClient, path: str) -> None:
    conversation = (await client.post("/api/conversations", json={})).json()
    path = path.format(id=conversation["id"])
    for offset in (2**63, 2**64, 10**30):
        response = await client.get(path, params={"offset": offset})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "offset"
    assert (await client.get(path, params={"offset": 1000})).json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/run/{id}"),
        ("GET", "/api/stream/{id}"),
        ("GET", "/api/export/{id}.json"),
        ("POST", "/api/run/{id}/stop"),
        ("GET", "/api/conversations/{id}"),
        ("PATCH", "/api/conversations/{id}"),
        ("DELETE", "/api/conversations/{id}"),
        ("GET", "/api/conversations/{id}/messages"),
        ("POST", "/api/conversations/{id}/messages"),
        ("GET", "/api/conversations/{id}/stream"),
    ],
)
async def test_a_nul_in_a_path_id_is_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    body = {"POST": {"message": "x"}, "PATCH": {"title": "x"}}.get(method)
    response = await client.request(method, path.format(id="a%00b"), json=body)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


async def test_previous_response_and_conversation_header_with_nul_are_404(
    client: httpx.AsyncClient,
) -> None:
    chained = await client.post(
        "/api/chat/stream", json={"message": "hi", "previous_response_id": "a\x00b"}
    )
    assert chained.status_code in (404, 422), chained.text
    response = await client.post(
        "/v1/chat/completions", json=_chat(), headers={"X-Symposia-Conversation": "a%00b"}
    )
    assert response.status_code == 404
    await _nothing_stored(client)


async def test_v1_new_conversation_with_a_message_too_long_writes_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    text = "x" * (container.settings.max_message_chars + 1)
    response = await client.post(
        "/v1/chat/completions",
        json=_chat(messages=[{"role": "user", "content": text}]),
        headers={"X-Symposia-Conversation": "new"},
    )
    assert response.status_code == 413
    await _nothing_stored(client)


@pytest.mark.parametrize("surface", ["chat", "v1"])
async def test_a_request_failing_after_its_conversation_was_created_leaves_none(
    client: httpx.AsyncClient,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
    surface: str,
) -> None:
    async def disk_full(conversation_id: str, message: Message, reply_model: object = None) -> None:
        raise OperationalError("INSERT INTO messages", {}, Exception("database or disk is full"))

    # Where a user message is written (with its reply, for /api/chat/stream).
    monkeypatch.setattr(container.conversations.replies, "add_question", disk_full)
    if surface == "chat":
        response = await client.post("/api/chat/stream", json={"message": "hi"})
    else:
        response = await client.post(
            "/v1/chat/completions", json=_chat(), headers={"X-Symposia-Conversation": "new"}
        )
    assert response.status_code == 503
    await _nothing_stored(client)


async def test_only_connection_failures_count_as_an_outage(
    container: Container, scripted: ScriptedProvider
) -> None:
    with pytest.raises(IntegrityError) as refused:  # a query the database refuses
        await container.run_repository.add_message("no-such-run", Message("user", "u", "x"))
    assert not is_connection_failure(refused.value)
    with pytest.raises(ConnectionRefusedError) as down:  # what asyncpg raises when nothing listens
        await asyncpg.connect(host="127.0.0.1", port=free_port(), user="x", timeout=3)
    assert is_connection_failure(down.value)
    assert not is_connection_failure(OSError("a file, not the database"))
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError) as other:
        sock.connect(("127.0.0.1", free_port()))
    assert not is_connection_failure(other.value)


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_deep_nesting_in_an_update_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    """Issue 22: a body nested ~254 levels deep was stored and broke every later read."""
    conversation = (await client.post("/api/conversations", json={"title": "t"})).json()
    path = f"/api/conversations/{conversation['id']}"
    tool = {"type": "function", "function": {"name": "f", "parameters": _nested(300)}}
    patched = await client.patch(path, json={"tools": [tool]})
    assert patched.status_code == 422, patched.text
    assert patched.json()["field"].startswith("tools.0.function.parameters")
    assert (await client.get(path)).json() == {**conversation, "messages": []}  # GET adds them
    run = (await client.post("/api/run", json={"topic": "t", "bots": BOTS})).json()
    bot = await client.patch(f"/api/run/{run['id']}/bot/0", json={"temperature": _nested(300)})
    assert bot.status_code == 422
    assert bot.json()["field"].startswith("temperature")
    assert (await client.get("/api/conversations")).status_code == 200

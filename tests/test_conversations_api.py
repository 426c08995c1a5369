"""Conversations and the one-call chat stream, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.fakes.live import LiveServer
from tests.helpers import wait_done
from tests.sse import chat, collect
from tests.sse import frames as read_frames

Json = dict[str, Any]


async def _conversation(client: httpx.AsyncClient, **body: Any) -> Json:
    response = await client.post("/api/conversations", json=body)
    assert response.status_code == 201, response.text
    result: Json = response.json()
    return result


async def _say(client: httpx.AsyncClient, conversation_id: str, text: str, **extra: Any) -> Json:
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"message": text, **extra}
    )
    assert response.status_code == 201, response.text
    result: Json = response.json()
    return result


async def test_create_list_get_patch_delete(client: httpx.AsyncClient) -> None:
    first = await _conversation(client, title="First")
    assert first["default_model"] == "scripted/echo"  # DEFAULT_MODEL
    second = await _conversation(client, default_model="scripted/count", system_prompt="Count.")
    await _say(client, first["id"], "hello")

    listed = (await client.get("/api/conversations")).json()["items"]
    by_id = {c["id"]: c for c in listed}
    assert by_id[first["id"]]["message_count"] == 1
    assert by_id[second["id"]]["message_count"] == 0
    assert listed[0]["id"] == first["id"]  # most recently active first
    page = (await client.get("/api/conversations", params={"limit": 1, "offset": 1})).json()
    assert [c["id"] for c in page["items"]] == [second["id"]]

    got = (await client.get(f"/api/conversations/{second['id']}")).json()
    assert (got["default_model"], got["system_prompt"]) == ("scripted/count", "Count.")
    patched = await client.patch(
        f"/api/conversations/{second['id']}",
        json={"title": "Renamed", "default_model": "scripted/echo"},
    )
    assert patched.status_code == 200
    assert (patched.json()["title"], patched.json()["default_model"]) == (
        "Renamed",
        "scripted/echo",
    )

    assert (await client.delete(f"/api/conversations/{first['id']}")).status_code == 204
    assert (await client.get(f"/api/conversations/{first['id']}")).status_code == 404
    assert (await client.get(f"/api/conversations/{first['id']}/messages")).status_code == 404
    assert (await client.delete(f"/api/conversations/{first['id']}")).status_code == 404


async def test_messages_are_listed_in_order_and_paginated(client: httpx.AsyncClient) -> None:
    conversation = await _conversation(client)
    for index in range(5):
        await _say(client, conversation["id"], f"message {index}")
    page = (
        await client.get(
            f"/api/conversations/{conversation['id']}/messages", params={"limit": 2, "offset": 2}
        )
    ).json()
    assert [m["content"] for m in page["items"]] == ["message 2", "message 3"]
    assert all(m["role"] == "user" for m in page["items"])


async def test_reply_is_streamed_saved_and_announced_with_its_id(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    conversation = await _conversation(client, system_prompt="Be brief.")
    await _say(client, conversation["id"], "Hi there")
    frames = await collect(client, f"/api/conversations/{conversation['id']}/stream")
    assert [f.event for f in frames][:2] == ["turn_start", "token"]
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    text = "".join(f.data["delta"] for f in frames if f.event == "token")
    assert text == "You said: Hi there"
    done = frames[-1]
    assert done.event == "done"
    assert done.data["status"] == "completed"
    assert done.data["conversation_id"] == conversation["id"]
    messages = (await client.get(f"/api/conversations/{conversation['id']}/messages")).json()
    reply = messages["items"][-1]
    assert (reply["id"], reply["role"], reply["content"]) == (
        done.data["message_id"],
        "assistant",
        text,
    )
    assert reply["model"] == "scripted/echo"
    assert reply["usage"]["completion_tokens"] == 4
    (request,) = scripted.requests
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "Hi there"),
    ]


async def test_per_message_model_override_and_query_override(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    conversation = await _conversation(client)
    await _say(client, conversation["id"], "one", model="scripted/count")
    frames = await collect(client, f"/api/conversations/{conversation['id']}/stream")
    assert frames[0].data["model"] == "scripted/count"
    await _say(client, conversation["id"], "two", model="scripted/count")
    frames = await collect(
        client, f"/api/conversations/{conversation['id']}/stream?model=scripted/echo"
    )
    assert frames[0].data["model"] == "scripted/echo"
    assert [r.model for r in scripted.requests] == ["count", "echo"]


async def test_streaming_without_a_pending_user_message_is_409(client: httpx.AsyncClient) -> None:
    conversation = await _conversation(client)
    empty = await client.get(f"/api/conversations/{conversation['id']}/stream")
    assert empty.status_code == 409
    await _say(client, conversation["id"], "hi")
    await collect(client, f"/api/conversations/{conversation['id']}/stream")
    again = await client.get(f"/api/conversations/{conversation['id']}/stream")
    assert again.status_code == 409
    assert "not from the user" in again.json()["message"]


async def test_a_reply_can_be_resumed_after_a_drop(client: httpx.AsyncClient) -> None:
    conversation = await _conversation(client)
    await _say(client, conversation["id"], "a b c d e f")
    path = f"/api/conversations/{conversation['id']}/stream"
    whole = await collect(client, path)
    resumed = await collect(client, path, {"Last-Event-ID": "3"})
    assert [f.seq for f in resumed] == [f.seq for f in whole[3:]]
    assert resumed[-1].data == whole[-1].data


@pytest.mark.parametrize("route", ["messages", "stream", "chat"])
async def test_empty_and_oversized_messages(
    client: httpx.AsyncClient, container: Container, route: str
) -> None:
    conversation = await _conversation(client)
    container.conversations.limits = type(container.conversations.limits)(
        "scripted/echo", 50, 64, 8000
    )

    async def send(text: str) -> httpx.Response:
        if route == "chat":
            return await client.post("/api/chat/stream", json={"message": text})
        return await client.post(
            f"/api/conversations/{conversation['id']}/messages", json={"message": text}
        )

    assert (await send("   ")).status_code == 422
    too_long = await send("x" * 51)
    assert too_long.status_code == 413
    assert "MAX_MESSAGE_CHARS" in too_long.json()["message"]
    messages = (await client.get(f"/api/conversations/{conversation['id']}/messages")).json()
    assert messages["items"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/conversations/{id}"),
        ("PATCH", "/api/conversations/{id}"),
        ("DELETE", "/api/conversations/{id}"),
        ("POST", "/api/conversations/{id}/messages"),
        ("GET", "/api/conversations/{id}/messages"),
        ("GET", "/api/conversations/{id}/stream"),
    ],
)
async def test_unknown_conversation_is_404(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"POST": {"message": "hi"}, "PATCH": {"title": "t"}}.get(method)
    response = await client.request(method, path.format(id="nope"), json=body)
    assert response.status_code == 404
    assert "nope" in response.json()["message"]


async def test_bad_models_are_422(client: httpx.AsyncClient) -> None:
    assert (
        await client.post("/api/conversations", json={"default_model": "nope/x"})
    ).status_code == 422
    conversation = await _conversation(client)
    bad = await client.post(
        f"/api/conversations/{conversation['id']}/messages",
        json={"message": "hi", "model": "scripted/unknown"},
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "model"
    assert (
        await client.patch(f"/api/conversations/{conversation['id']}", json={})
    ).status_code == 422


async def test_deleting_a_conversation_while_its_reply_streams_cancels_it(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["thinking", "..."], stall_after=1))
    conversation = await _conversation(client, default_model="scripted/stall")
    await _say(client, conversation["id"], "hi")
    stream_id, _ = await container.conversations.reply_stream(conversation["id"], owner="dev")
    async for event in container.log.subscribe(stream_id):
        if event.type == "token":
            break
    response = await client.delete(f"/api/conversations/{conversation['id']}")
    assert response.status_code == 204
    events = await wait_done(container, stream_id, timeout=5)
    assert events[-1].data["status"] == "cancelled"
    assert events[-1].data["message_id"] is None  # nothing saved for a deleted conversation
    assert (await client.get(f"/api/conversations/{conversation['id']}")).status_code == 404


async def test_chat_stream_chains_previous_response_id_across_three_calls(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    first = (await chat(client, message="one"))[-1].data
    assert first["status"] == "completed"
    second = (await chat(client, message="two", previous_response_id=first["response_id"]))[-1]
    third = (await chat(client, message="three", previous_response_id=second.data["response_id"]))[
        -1
    ]
    assert (
        first["conversation_id"]
        == second.data["conversation_id"]
        == (third.data["conversation_id"])
    )
    assert len({first["response_id"], second.data["response_id"], third.data["response_id"]}) == 3
    assert [(m.role, m.content) for m in scripted.requests[2].messages] == [
        ("user", "one"),
        ("assistant", "You said: one"),
        ("user", "two"),
        ("assistant", "You said: two"),
        ("user", "three"),
    ]
    messages = (await client.get(f"/api/conversations/{first['conversation_id']}/messages")).json()[
        "items"
    ]
    assert [m["id"] for m in messages if m["role"] == "assistant"] == [
        first["response_id"],
        second.data["response_id"],
        third.data["response_id"],
    ]


async def test_chat_stream_with_conversation_id_and_a_model(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    conversation = await _conversation(client)
    done = (
        await chat(client, message="hi", conversation_id=conversation["id"], model="scripted/count")
    )[-1].data
    assert done["conversation_id"] == conversation["id"]
    assert scripted.requests[-1].model == "count"


@pytest.mark.parametrize("field", ["conversation_id", "previous_response_id"])
async def test_chat_stream_unknown_ids_are_404(client: httpx.AsyncClient, field: str) -> None:
    response = await client.post("/api/chat/stream", json={"message": "hi", field: "missing"})
    assert response.status_code == 404


async def test_history_is_trimmed_to_the_context_budget_keeping_the_system_prompt(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    conversation = await _conversation(client, system_prompt="Stay on topic.")
    for index in range(6):
        await _say(client, conversation["id"], f"{index} " + "word " * 40)
    container.conversations.limits = type(container.conversations.limits)(
        "scripted/echo", 100_000, 64, 64 + 3 * 60
    )
    await collect(client, f"/api/conversations/{conversation['id']}/stream")
    sent = scripted.requests[-1].messages
    assert sent[0].content == "Stay on topic."
    assert 1 < len(sent) < 7
    assert sent[-1].content.startswith("5 ")


@pytest.mark.parametrize("path", ["/api/chat/stream", "/api/conversations/{id}/stream"])
async def test_a_reply_survives_its_viewer_leaving_and_nothing_is_left_behind(
    live: LiveServer, container: Container, scripted: ScriptedProvider, path: str
) -> None:
    """The reply belongs to the server (unlike `/v1`): a viewer leaving stops only its
    own delivery; the reply ends and is kept, and no task or stream is left over."""
    chunks = [f" w{i}" for i in range(20)]
    scripted.add_script("paced", Script(chunks=chunks, delay=0.02))
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        if path == "/api/chat/stream":
            request = http.stream("POST", path, json={"message": "hi", "model": "scripted/paced"})
        else:
            conversation = await _conversation(http, default_model="scripted/paced")
            await _say(http, conversation["id"], "hi")
            request = http.stream("GET", path.format(id=conversation["id"]))
        async with request as response:
            async for frame in read_frames(response):
                if frame.event == "token":
                    break  # and leave
        (conversation,) = (await http.get("/api/conversations")).json()["items"]
        replies: list[Json] = []
        for _ in range(300):
            items = (await http.get(f"/api/conversations/{conversation['id']}/messages")).json()
            replies = [m for m in items["items"] if m["role"] == "assistant"]
            if replies:
                break
            await asyncio.sleep(0.01)
    assert [(r["status"], r["content"]) for r in replies] == [("complete", "".join(chunks))]
    for _ in range(100):
        if container.streams.count == 0 and container.conversations.tasks.count == 0:
            break
        await asyncio.sleep(0.01)
    assert container.streams.count == 0
    assert container.conversations.tasks.count == 0

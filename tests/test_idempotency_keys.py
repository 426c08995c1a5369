"""Issue 21, "a retried request creates nothing twice": `Idempotency-Key` on the four
creating routes, on SQLite and PostgreSQL (the `client` fixture runs on both)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from symposia.app import container_of
from symposia.providers.scripted import ScriptedProvider
from symposia.storage.db import session_factory
from symposia.storage.sql_idempotency import SqlIdempotencyKeys
from symposia.storage.tables import IdempotencyKeyRow
from tests.sse import chat, frames

RUN = {"topic": "tea or coffee", "max_turns": 2}


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def _calls(scripted: ScriptedProvider) -> int:
    return len(scripted.requests)


async def _runs(client: httpx.AsyncClient) -> list[str]:
    return [run["id"] for run in (await client.get("/api/runs")).json()["items"]]


async def test_a_retried_run_start_answers_the_first_run(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/run", json=RUN, headers=_key("run-1"))
    again = await client.post("/api/run", json=RUN, headers=_key("run-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _runs(client) == [first.json()["id"]]  # one run


async def test_a_key_reused_for_another_body_is_refused(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/run", json=RUN, headers=_key("run-2"))
    other = await client.post("/api/run", json={**RUN, "topic": "else"}, headers=_key("run-2"))
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert "use a new key" in other.json()["message"]
    elsewhere = await client.post(
        "/api/conversations/x/messages", json={"message": "hi"}, headers=_key("run-2")
    )
    assert elsewhere.status_code == 422  # another route is another request
    assert await _runs(client) == [first.json()["id"]]


async def test_without_a_key_every_request_creates(client: httpx.AsyncClient) -> None:
    await client.post("/api/run", json=RUN)
    await client.post("/api/run", json=RUN)
    assert len(await _runs(client)) == 2


async def test_a_key_is_forgotten_after_a_day(client: httpx.AsyncClient, app: FastAPI) -> None:
    first = await client.post("/api/run", json=RUN, headers=_key("old"))
    sessions = session_factory(container_of(app).engine)
    async with sessions.begin() as session:
        await session.execute(
            update(IdempotencyKeyRow).values(
                created_at=IdempotencyKeyRow.created_at - timedelta(hours=24, seconds=1)
            )
        )
    later = await client.post("/api/run", json={**RUN, "topic": "new"}, headers=_key("old"))
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]


async def test_a_bad_key_is_refused(client: httpx.AsyncClient) -> None:
    refused = await client.post("/api/run", json=RUN, headers=_key("k" * 256))
    assert refused.status_code == 422
    assert refused.json()["field"] == "Idempotency-Key"
    assert await _runs(client) == []


async def test_a_refused_request_lets_its_key_go(client: httpx.AsyncClient) -> None:
    """A request that failed created nothing and stored nothing: its retry runs anew (and
    the key may then carry another request, which succeeds)."""
    bad = {**RUN, "bots": [{"model": "nowhere/model"}, {"model": "scripted/echo"}]}
    assert (await client.post("/api/run", json=bad, headers=_key("k"))).status_code == 422
    assert (await client.post("/api/run", json=bad, headers=_key("k"))).status_code == 422
    assert await _runs(client) == []
    made = await client.post("/api/run", json=RUN, headers=_key("k"))
    assert made.status_code == 201
    assert await _runs(client) == [made.json()["id"]]


async def test_two_requests_racing_with_one_key_create_one_run(
    client: httpx.AsyncClient,
) -> None:
    """The one that loses is answered the first's run, or 409 while it is in flight."""
    answers = await asyncio.gather(
        *(client.post("/api/run", json=RUN, headers=_key("race")) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, statuses
    made = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(made) == 1
    assert await _runs(client) == list(made)
    for conflict in (a for a in answers if a.status_code == 409):
        assert conflict.json()["code"] == "idempotency_key_in_flight"
        assert conflict.headers["Retry-After"] == "1"


async def test_workers_racing_for_a_key_resolve_to_one(app: FastAPI) -> None:
    """Two stores on one database (two workers): one claim wins, the others see it."""
    engine = container_of(app).engine
    stores = [SqlIdempotencyKeys(session_factory(engine)) for _ in range(4)]
    claims = await asyncio.gather(
        *(store.claim("p", "k", "/r", "f", 86_400, 900) for store in stores)
    )
    assert sum(claim is None for claim in claims) == 1
    assert all(c is None or c.status is None for c in claims)


async def test_a_retried_message_adds_one_message(client: httpx.AsyncClient) -> None:
    conversation = (await client.post("/api/conversations", json={})).json()["id"]
    path = f"/api/conversations/{conversation}/messages"
    first = await client.post(path, json={"message": "hello"}, headers=_key("m"))
    again = await client.post(path, json={"message": "hello"}, headers=_key("m"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = await client.post(path, json={"message": "bye"}, headers=_key("m"))
    assert other.status_code == 422
    messages = (await client.get(path)).json()["items"]
    assert [m["content"] for m in messages] == ["hello"]


async def test_a_retried_chat_gets_the_first_reply_and_asks_once(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    body = {"message": "hi there", "model": "scripted/echo"}
    first = await _chat(client, body, "chat-1")
    again = await _chat(client, body, "chat-1")
    assert again == first  # the same stream, from its start
    assert first[-1]["event"] == "done"
    assert _calls(scripted) == 1
    conversations = (await client.get("/api/conversations")).json()["items"]
    assert len(conversations) == 1
    plain = await chat(client, **body)  # no key: a new conversation and reply
    assert plain[-1].event == "done"
    assert _calls(scripted) == 2


async def _chat(client: httpx.AsyncClient, body: dict[str, Any], key: str) -> list[Any]:
    async with client.stream("POST", "/api/chat/stream", json=body, headers=_key(key)) as got:
        assert got.status_code == 200, await got.aread()
        return [
            {"id": f.id, "event": f.event, "data": f.data}
            async for f in frames(got)
            if f.comment is None
        ]


async def test_a_retried_response_is_the_first_and_asks_once(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    body = {"model": "scripted/echo", "input": "say it"}
    first = await client.post("/v1/responses", json=body, headers=_key("r"))
    again = await client.post("/v1/responses", json=body, headers=_key("r"))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert _calls(scripted) == 1
    other = await client.post("/v1/responses", json={**body, "input": "x"}, headers=_key("r"))
    assert other.status_code == 400  # OpenAI's status for a request it refuses
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert _calls(scripted) == 1


async def test_a_retried_streamed_response_replays_it_and_asks_once(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    body = {"model": "scripted/echo", "input": "say it", "stream": True}
    first = await _events(client, body)
    again = await _events(client, body)
    assert _calls(scripted) == 1
    assert first[-1]["type"] == "response.completed"
    assert [e["type"] for e in again] == ["response.created", "response.completed"]
    assert again[-1]["response"] == first[-1]["response"]


async def _events(client: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with client.stream("POST", "/v1/responses", json=body, headers=_key("s")) as got:
        assert got.status_code == 200, await got.aread()
        return [json.loads("\n".join(f.data_lines)) async for f in frames(got) if f.data_lines]

"""Issue 11, point 6: a conversation's reply stream gets the guarantees of a run's.

Any server process serves it (the database says which reply a conversation has; a shared
log carries its events), an id means one event forever (rebuilt from storage with its
live ids once the log is gone), starting a reply is one transaction (two requests, in two
processes, never start two), and a reply whose process died is ended by a live one, its
text kept, never generated again. Every test runs on SQLite and PostgreSQL; those that
are not about a shared log run on the in-memory and the Redis event log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.domain.events import Event
from symposia.domain.models import ReplyStatus
from symposia.providers.scripted import Script, ScriptedProvider
from tests.conftest import make_settings
from tests.fakes.live import free_port, serve_process, start_live_server, wait_until_healthy
from tests.helpers import eventually, wait_done
from tests.sse import Frame, collect, frames
from tests.test_event_ids import FAILURE, WORDS, _check_resume, serving
from tests.test_event_log_contract import REDIS_URL, _require_redis

# Closed streams expire soon: the tests leave nothing in Redis for long.
REDIS = {"event_log": "redis", "redis_url": REDIS_URL, "event_log_retention_seconds": 10}
HEARTBEAT, STALE = 0.2, 1.0  # margins for a loaded machine
Json = dict[str, Any]


@pytest.fixture(params=["memory", "redis"])
async def log_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "redis":
        await _require_redis()
        return dict(REDIS)
    return {"event_log": "memory"}


@dataclass
class Instance:
    """One server process: its parts, and a client of its real HTTP server."""

    container: Container
    http: httpx.AsyncClient


@asynccontextmanager
async def instance(
    database_url: str, scripted: ScriptedProvider, **overrides: Any
) -> AsyncIterator[Instance]:
    settings = make_settings(
        database_url=database_url,
        run_heartbeat_seconds=HEARTBEAT,
        run_stale_seconds=STALE,
        **overrides,
    )
    providers = default_providers(settings)
    providers.register(scripted)
    app = create_app(settings, providers)
    container = container_of(app)
    await container.start()
    try:
        async with (
            start_live_server(app) as live,
            httpx.AsyncClient(base_url=live.base_url, timeout=30) as http,
        ):
            yield Instance(container, http)
    finally:
        await container.shutdown()


async def _conversation(http: httpx.AsyncClient, model: str) -> str:
    response = await http.post("/api/conversations", json={"default_model": model})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _say(http: httpx.AsyncClient, conversation_id: str, text: str) -> httpx.Response:
    return await http.post(f"/api/conversations/{conversation_id}/messages", json={"message": text})


async def _messages(http: httpx.AsyncClient, conversation_id: str) -> list[Json]:
    response = await http.get(f"/api/conversations/{conversation_id}/messages")
    items: list[Json] = response.json()["items"]
    return items


def _triples(frames: list[Frame]) -> list[tuple[int, str | None, Any]]:
    return [(f.seq, f.event, f.data) for f in frames]


def _frames(events: list[Event]) -> list[Frame]:
    return [Frame(str(e.seq), e.type, [json.dumps(e.data)]) for e in events]


async def _tokens_in(container: Container, stream_id: str, count: int) -> None:
    for _ in range(1000):
        if await container.log.exists(stream_id):
            events = await container.log.read(stream_id)
            if sum(e.type == "token" for e in events) >= count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{stream_id} never had {count} tokens")


# Any process serves a reply stream -----------------------------------------------------


async def test_a_viewer_on_another_process_follows_the_reply_token_by_token(
    database_url: str, scripted: ScriptedProvider
) -> None:
    await _require_redis()
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(30)], delay=0.03))
    async with (
        instance(database_url, scripted, **REDIS) as a,
        instance(database_url, scripted, **REDIS) as b,
    ):
        conversation_id = await _conversation(a.http, "scripted/paced")
        question = (await _say(a.http, conversation_id, "hi")).json()["id"]
        path = f"/api/conversations/{conversation_id}/stream"
        on_a = asyncio.create_task(collect(a.http, path))  # A starts the reply
        await _tokens_in(a.container, f"reply-{question}", 1)

        followed: list[Frame] = []
        tokens_while_running = 0
        async with b.http.stream("GET", path) as response:
            assert response.status_code == 200
            async for frame in frames(response):
                if frame.comment is not None:
                    continue
                followed.append(frame)
                if frame.event == "token":
                    reply = await b.container.conversations.replies.get(question)
                    assert reply is not None
                    tokens_while_running += reply.status is ReplyStatus.RUNNING
        live = await on_a

        assert _triples(followed) == _triples(live)
        assert [f.seq for f in live] == list(range(1, len(live) + 1))
        assert live[-1].event == "done"
        assert live[-1].data["status"] == "completed"
        assert tokens_while_running > 5  # followed live, not read back at the end
        assert len(scripted.requests) == 1  # B generated nothing
        assert b.container.conversations.tasks.count == 0

        # Answered: B still has it for a client resuming, from the shared log.
        resumed = await collect(b.http, path, {"Last-Event-ID": "3"})
        assert _triples(resumed) == _triples(live[3:])
        assert (await b.http.get(path)).status_code == 409  # nothing new to answer


async def test_deleting_on_one_process_stops_the_reply_another_generates(
    database_url: str, scripted: ScriptedProvider
) -> None:
    await _require_redis()
    scripted.add_script("slow", Script(chunks=[f" w{i}" for i in range(200)], delay=0.02))
    async with (
        instance(database_url, scripted, **REDIS) as a,
        instance(database_url, scripted, **REDIS) as b,
    ):
        conversation_id = await _conversation(a.http, "scripted/slow")
        question = (await _say(a.http, conversation_id, "hi")).json()["id"]
        path = f"/api/conversations/{conversation_id}/stream"
        on_a = asyncio.create_task(collect(a.http, path))
        await _tokens_in(a.container, f"reply-{question}", 2)
        assert (await b.http.delete(f"/api/conversations/{conversation_id}")).status_code == 204
        live = await asyncio.wait_for(on_a, HEARTBEAT * 10)  # stopped at A's next beat
        assert live[-1].event == "done"
        assert live[-1].data["message_id"] is None
        assert sum(f.event == "token" for f in live) < 100
        await eventually(lambda: a.container.conversations.tasks.count == 0, within=2)
        assert scripted.streaming == 0  # the model call is over: nothing more is billed
        assert (await a.http.get(f"/api/conversations/{conversation_id}")).status_code == 404


# Starting a reply is atomic ------------------------------------------------------------


async def test_concurrent_requests_for_one_reply_start_it_once(
    database_url: str, scripted: ScriptedProvider, log_settings: dict[str, Any]
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(20)], delay=0.05))
    async with (
        instance(database_url, scripted, **log_settings) as a,
        instance(database_url, scripted, **log_settings) as b,
    ):
        conversation_id = await _conversation(a.http, "scripted/paced")
        question = (await _say(b.http, conversation_id, "hi")).json()["id"]
        path = f"/api/conversations/{conversation_id}/stream"
        servers = [a, b, a, b, b, a, a, b]
        viewed = await asyncio.gather(*(collect(s.http, path) for s in servers))
        assert len(scripted.requests) == 1
        reply = await a.container.conversations.replies.get(question)
        assert reply is not None
        assert reply.status is ReplyStatus.COMPLETED
        messages = await _messages(a.http, conversation_id)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        writer = a if reply.instance_id == a.container.conversations.replies.instance_id else b
        whole = [v for s, v in zip(servers, viewed, strict=True) if s is writer]
        if "redis_url" in log_settings:  # a shared log: every viewer, on either process
            whole = viewed
        assert all(_triples(v) == _triples(whole[0]) for v in whole)
        assert whole[0][-1].data["message_id"] == messages[-1]["id"]


async def test_chat_stream_twice_at_once_from_two_processes_answers_one(
    database_url: str, scripted: ScriptedProvider, log_settings: dict[str, Any]
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(20)], delay=0.03))
    async with (
        instance(database_url, scripted, **log_settings) as a,
        instance(database_url, scripted, **log_settings) as b,
    ):
        conversation_id = await _conversation(a.http, "scripted/paced")

        async def chat(server: Instance, text: str) -> tuple[int, Any]:
            body = {"message": text, "conversation_id": conversation_id}
            async with server.http.stream("POST", "/api/chat/stream", json=body) as response:
                if response.status_code != 200:
                    return response.status_code, json.loads(await response.aread())
                got = [f async for f in frames(response) if f.comment is None]
                return 200, got

        results = dict(await asyncio.gather(chat(a, "one"), chat(b, "two")))
        assert sorted(results) == [200, 409]
        assert results[409]["code"] == "reply_in_progress"
        done = results[200][-1]
        assert (done.event, done.data["status"]) == ("done", "completed")
        messages = await _messages(b.http, conversation_id)
        assert [m["role"] for m in messages] == ["user", "assistant"]  # the refused one: not kept
        assert messages[1]["id"] == done.data["message_id"]
        assert len(scripted.requests) == 1


async def test_a_message_while_a_reply_is_generated_is_409(
    database_url: str, scripted: ScriptedProvider
) -> None:
    scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(20)], delay=0.02))
    async with instance(database_url, scripted) as a:
        conversation_id = await _conversation(a.http, "scripted/paced")
        question = (await _say(a.http, conversation_id, "hi")).json()["id"]
        reading = asyncio.create_task(
            collect(a.http, f"/api/conversations/{conversation_id}/stream")
        )
        await _tokens_in(a.container, f"reply-{question}", 1)
        refused = await _say(a.http, conversation_id, "and another thing")
        assert refused.status_code == 409
        assert refused.json()["code"] == "reply_in_progress"
        assert "done" in refused.json()["message"]
        await reading
        assert (await _say(a.http, conversation_id, "and another thing")).status_code == 201
        roles = [m["role"] for m in await _messages(a.http, conversation_id)]
        assert roles == ["user", "assistant", "user"]


# An id means one event, forever ----------------------------------------------------


@pytest.mark.parametrize("outcome", ["completed", "error", "cancelled"])
async def test_reply_ids_mean_what_they_meant_live_once_the_log_is_gone(
    database_url: str, log_settings: dict[str, Any], outcome: str
) -> None:
    """In memory the log goes with the process; on Redis, past its retention."""
    scripted = ScriptedProvider(token_delay=0.0)
    scripted.add_script(
        "words",
        {
            "completed": Script(chunks=WORDS),
            "error": Script(chunks=WORDS, fail_after=2, failure=FAILURE),
            "cancelled": Script(chunks=WORDS, stall_after=2),
        }[outcome],
    )
    settings = {**log_settings, "event_log_retention_seconds": 0.3}
    async with serving(database_url, scripted, **settings) as (client, container):
        created = await client.post("/api/conversations", json={"default_model": "scripted/words"})
        conversation_id = created.json()["id"]
        path = f"/api/conversations/{conversation_id}/stream"
        await client.post(f"/api/conversations/{conversation_id}/messages", json={"message": "?"})
        stream_id, _ = await container.conversations.reply_stream(conversation_id, owner="dev")
        if outcome == "cancelled":  # what SIGTERM does: cancelled, partial text kept
            await _tokens_in(container, stream_id, 2)
            await container.conversations.shutdown(2)
        await wait_done(container, stream_id)
        live = _frames(await container.log.read(stream_id))  # what its viewers got
    assert live[-1].event == "done"
    assert live[-1].data["status"] == outcome
    assert [f.seq for f in live] == list(range(1, len(live) + 1))
    complete = next(f for f in live if f.event == "turn_complete")
    assert complete.data["status"] == ("complete" if outcome == "completed" else "partial")
    assert complete.data["message_id"] == live[-1].data["message_id"] is not None
    if "redis_url" in settings:
        await asyncio.sleep(0.5)  # past the retention of the closed stream

    async with serving(database_url, scripted, **settings) as (client, container):  # restarted
        assert not await container.log.exists(stream_id)
        first_token = next(f.seq for f in live if f.event == "token")
        for after in (
            1,
            first_token,
            first_token + 1,
            complete.seq - 1,
            complete.seq,
        ):
            replayed = await collect(client, path, {"Last-Event-ID": str(after)})
            _check_resume(live, replayed, after)
        at_done = {"Last-Event-ID": str(live[-1].seq)}
        assert (await client.get(path, headers=at_done)).status_code == 204  # browser: stop
        everything = await collect(client, path, {"Last-Event-ID": "1"})
        assert [f.event for f in everything].count("snapshot") == 1  # the tokens, compacted
        assert "token" not in [f.event for f in everything]
        assert (await client.get(path)).status_code == 409  # answered: resume only
        assert len(scripted.requests) == 1  # read back, never generated again


# A reply whose process died is ended, never generated again ----------------------------


async def test_a_reply_of_an_abandoned_process_is_ended_by_another(
    database_url: str, scripted: ScriptedProvider
) -> None:
    """In-memory logs: A stalls mid-reply and stops beating (a hung or partitioned process);
    B takes the reply over once stale and ends it. A, waking up, can write nothing."""
    scripted.add_script("stall", Script(chunks=["partial ", "words"], stall_after=1))
    async with instance(database_url, scripted) as a, instance(database_url, scripted) as b:
        conversation_id = await _conversation(a.http, "scripted/stall")
        question = (await _say(a.http, conversation_id, "hi")).json()["id"]
        stream_id, _ = await a.container.conversations.reply_stream(conversation_id, owner="dev")
        await _tokens_in(a.container, stream_id, 1)
        await a.container.reply_liveness.close()  # A stops beating; its task stays stalled

        replies = b.container.conversations.replies
        for _ in range(int((STALE + 5 * HEARTBEAT + 2) / 0.05)):  # B's sweep ends it
            reply = await replies.get(question)
            assert reply is not None
            if reply.status is not ReplyStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        reply = await replies.get(question)
        assert reply is not None
        assert reply.status is ReplyStatus.INTERRUPTED
        assert reply.error is not None
        assert reply.error["code"] == "reply_interrupted"
        assert reply.epoch == 2
        # B never had its events (A's memory did): storage numbers the end after the
        # last id it knows. Its viewers get an end; the question is not answered again.
        rebuilt = await collect(b.http, f"/api/conversations/{conversation_id}/stream")
        assert [(f.seq, f.event) for f in rebuilt] == [(1, "turn_start"), (2, "error"), (3, "done")]
        assert rebuilt[-1].data["status"] == "interrupted"
        assert (await _say(b.http, conversation_id, "again")).status_code == 201

        await a.container.conversations.shutdown(2)  # A's task ends: fenced out, it saves nothing
        roles = [m["role"] for m in await _messages(b.http, conversation_id)]
        assert roles == ["user", "user"]
        left = await wait_done(a.container, stream_id, timeout=2)  # A closed its own stream
        assert all(e.type != "done" for e in left)
        assert a.container.conversations.tasks.count == 0
        assert len(scripted.requests) == 1


def _serve(database_url: str, port: int, cwd: Path) -> Any:
    env = {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "EVENT_LOG": "redis",
        "DEFAULT_MODEL": "scripted/count",
        "DEFAULT_MAX_TOKENS": "400",
        "SCRIPTED_TOKEN_DELAY": "0.02",
        "RUN_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "RUN_STALE_SECONDS": str(STALE),
    }
    return serve_process(env, cwd)


async def test_kill_9_mid_reply_another_process_ends_it_keeping_the_text(
    database_url: str, scripted: ScriptedProvider, tmp_path: Path
) -> None:
    """A real `symposia serve` generates the reply; B (this process) follows it through
    Redis. A is killed with SIGKILL: within the stale time B ends the stream, and keeps
    the text A had sent as a partial message."""
    await _require_redis()
    port = free_port()
    a = _serve(database_url, port, tmp_path)
    try:
        async with (
            instance(database_url, scripted, **REDIS) as b,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as on_a,
        ):
            await wait_until_healthy(f"http://127.0.0.1:{port}", a)
            conversation_id = await _conversation(on_a, "scripted/count")
            await _say(on_a, conversation_id, "count")
            path = f"/api/conversations/{conversation_id}/stream"
            started = await on_a.send(on_a.build_request("GET", path), stream=True)  # A starts it
            assert started.status_code == 200
            followed: list[Frame] = []
            killed_at = 0.0
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(STALE + 10 * HEARTBEAT + 10):
                async with b.http.stream("GET", path) as response:
                    assert response.status_code == 200
                    async for frame in frames(response):
                        if frame.comment is not None:
                            continue
                        followed.append(frame)
                        if frame.event == "token" and frame.data["delta"].strip() == "20":
                            a.send_signal(signal.SIGKILL)
                            killed_at = loop.time()
            ended_within = loop.time() - killed_at
            await started.aclose()
    finally:
        if a.poll() is None:
            a.kill()
        a.wait(timeout=10)

    assert killed_at
    assert ended_within < STALE + 10 * HEARTBEAT
    assert [f.seq for f in followed] == list(range(1, len(followed) + 1))  # no gap, no repeat
    kinds = [f.event for f in followed]
    assert kinds[-3:] == ["turn_complete", "error", "done"]
    text = "".join(f.data["delta"] for f in followed if f.event == "token")
    assert text.startswith("1 2 3")
    assert " 20" in text
    complete, error, done = followed[-3:]
    assert (complete.data["status"], complete.data["content"]) == ("partial", text)
    assert error.data["code"] == "reply_interrupted"
    assert done.data == {
        "status": "interrupted",
        "message_id": complete.data["message_id"],
        "response_id": complete.data["message_id"],
        "conversation_id": conversation_id,
    }
    async with serving(database_url, scripted, **REDIS) as (client, _):
        messages = (await client.get(f"/api/conversations/{conversation_id}/messages")).json()
        assert [(m["role"], m["status"]) for m in messages["items"]] == [
            ("user", "complete"),
            ("assistant", "partial"),
        ]
        assert messages["items"][1]["content"] == text
        resumed = await collect(client, path, {"Last-Event-ID": str(complete.seq - 1)})
        assert _triples(resumed) == _triples(followed[-3:])
        assert len(scripted.requests) == 0  # never generated again

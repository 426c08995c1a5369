"""Issue 27 in conversations: a reply whose MCP call waits for approval survives its owner
leaving, as a run's turn does (tests/test_mcp_takeover.py). Real `symposia serve`
processes on one PostgreSQL database and one Redis: the owner is killed (SIGKILL) or shut
down (SIGTERM) while the call waits; the process that takes the reply over announces the
same call again (same id, same deadline) and waits; a decision taken on any process runs
the tool once, the model is asked with its result (never again for the answer it gave) and
the reply completes. A reply that ends any other way leaves nothing pending."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.databases import PostgresDatabases, pg_url
from tests.fakes.provider_server import FakeProviderServer, Received, Reply
from tests.fakes.redis_server import require_redis_sync
from tests.fakes.tool_caller import tool_caller
from tests.fakes.workers import Cluster, Worker, worker_env
from tests.mcp_servers import HERE
from tests.sse import frames
from tests.test_mcp_runs import OPENAI

TIMEOUT = 30.0
# A Redis database of its own: these workers' streams and limits never meet other tests'.
REDIS_DB = "redis://127.0.0.1:6379/13"


class Model:
    """The fake upstream, keeping each request it answers (its model and messages)."""

    def __init__(self, fake: FakeProviderServer) -> None:
        self.requests: list[str] = []
        self._answer = tool_caller({"text": "seen"})
        fake.responder = self.respond

    def respond(self, request: Received) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        self.requests.append(json.dumps([body.get("model"), body.get("messages")]))
        return self._answer(request)


@pytest.fixture
async def stage(
    postgres: PostgresDatabases, tmp_path: Path, fake_provider: FakeProviderServer
) -> AsyncIterator[tuple[Cluster, httpx.AsyncClient, Model, Path]]:
    require_redis_sync()
    tally = tmp_path / "tally.txt"
    servers = {
        "counted": {
            "command": sys.executable,
            "args": [str(HERE / "fault_server.py")],
            "env": {"TALLY_FILE": str(tally)},
            "require_approval": {"tally": "always"},
        }
    }
    (tmp_path / "mcp.json").write_text(json.dumps(servers))
    env = worker_env(
        pg_url(postgres.create()),
        REDIS_URL=REDIS_DB,
        OPENAI_API_KEY="sk-test-openai",
        OPENAI_BASE_URL=fake_provider.openai_base_url,
        DEFAULT_MODEL=OPENAI,
        MCP_SERVERS_FILE=str(tmp_path / "mcp.json"),
        HUMAN_TIMEOUT_SECONDS="60",
        EVENT_LOG="redis",
        CHAT_TITLES="false",
    )
    cluster = Cluster(env, tmp_path)
    model = Model(fake_provider)
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            yield cluster, client, model, tally
        finally:
            await cluster.close()


async def _start(
    cluster: Cluster, client: httpx.AsyncClient, **overrides: str
) -> tuple[Worker, Worker, str]:
    """Two workers; a conversation asked on the first, its reply begun there."""
    one, two = cluster.add(overrides), cluster.add(overrides)
    await cluster.start()
    body = {"default_model": OPENAI, "tools": ["counted.tally"]}
    created = await client.post(f"{one.base_url}/api/conversations", json=body)
    assert created.status_code == 201, created.text
    path = f"/api/conversations/{created.json()['id']}"
    said = await client.post(f"{one.base_url}{path}/messages", json={"message": "Count this."})
    assert said.status_code == 201, said.text
    await _stream_so_far(client, one, path)  # reading the stream starts the reply
    return one, two, path


async def _until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {TIMEOUT}s")


async def _pending(client: httpx.AsyncClient, worker: Worker, path: str) -> list[dict[str, Any]]:
    listed = await client.get(f"{worker.base_url}{path}/approvals")
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def _stream_so_far(
    client: httpx.AsyncClient, worker: Worker, path: str
) -> list[tuple[int, str, Any]]:
    """What the reply's stream holds now (a live one is read until it goes quiet)."""
    out: list[tuple[int, str, Any]] = []
    url = f"{worker.base_url}{path}/stream"
    try:
        async with client.stream("GET", url, headers={"Last-Event-ID": "1"}) as response:
            if response.status_code != 200:
                return out

            async def read() -> None:
                async for frame in frames(response):
                    if frame.comment is None:
                        out.append((frame.seq, frame.event or "", frame.data))

            await asyncio.wait_for(read(), 1.0)
    except (TimeoutError, httpx.TransportError):
        pass
    return out


async def _announced(
    client: httpx.AsyncClient, worker: Worker, path: str, times: int
) -> list[dict[str, Any]]:
    """The `awaiting_input` events once `times` of them were written (read from `worker`)."""

    async def seen() -> list[dict[str, Any]] | None:
        events = await _stream_so_far(client, worker, path)
        asked = [e[2] for e in events if e[1] == "awaiting_input"]
        return asked if len(asked) >= times else None

    found: list[dict[str, Any]] = await _until(seen, f"{times} awaiting_input events")
    return found


async def _ended(client: httpx.AsyncClient, worker: Worker, path: str) -> dict[str, Any]:
    """The reply's `done` (read back once it was written) and the answer it saved."""

    async def done() -> dict[str, Any] | None:
        events = await _stream_so_far(client, worker, path)
        return next((e[2] for e in events if e[1] == "done"), None)

    found: dict[str, Any] = await _until(done, "the reply's end")
    return found


async def _answer(client: httpx.AsyncClient, worker: Worker, path: str) -> dict[str, Any]:
    got = await client.get(f"{worker.base_url}{path}")
    assert got.status_code == 200, got.text
    return next(m for m in got.json()["messages"] if m["role"] == "assistant")


async def _leave(one: Worker, leaving: str) -> None:
    if leaving == "killed":
        one.kill()  # SIGKILL: nothing of the owner's cleanup runs
    else:
        await one.terminate()  # SIGTERM: the waiting reply is handed over, not ended


@pytest.mark.parametrize("leaving", ["killed", "shut down"])
async def test_a_reply_awaiting_approval_survives_its_owner_leaving(
    stage: tuple[Cluster, httpx.AsyncClient, Model, Path], leaving: str
) -> None:
    cluster, client, model, tally = stage
    one, two, path = await _start(cluster, client)
    pending = (await _until(lambda: _pending(client, one, path), "a pending call"))[0]
    (asked,) = await _announced(client, one, path, 1)
    assert len(model.requests) == 1  # the model asked once: it wants the tool

    await _leave(one, leaving)
    again = (await _announced(client, two, path, 2))[-1]  # the new owner asks again
    assert again["call"] == asked["call"]  # the same call, the same id
    assert again["until"] == asked["until"]  # the same deadline
    assert [p["call_id"] for p in await _pending(client, two, path)] == [pending["call_id"]]

    decided = await client.post(
        f"{two.base_url}{path}/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    done = await _ended(client, two, path)
    assert done["status"] == "completed", done

    assert tally.read_text().splitlines() == ["seen"]  # the tool ran once
    assert len(model.requests) == len(set(model.requests))  # no model call asked twice
    assert len(model.requests) == 2  # the call, then the answer with its result
    answer = await _answer(client, two, path)
    assert answer["status"] == "complete", answer
    assert answer["content"] == "Let me check.I found: tallied 1"
    (step,) = answer["tool_steps"]
    assert (step["id"], step["approval"], step["is_error"], step["content"]) == (
        pending["call_id"],
        "approved",
        False,
        "tallied 1",
    )
    events = await _stream_so_far(client, two, path)
    assert [e[2]["content"] for e in events if e[1] == "tool_result"] == ["tallied 1"]
    assert await _pending(client, two, path) == []
    late = await client.post(
        f"{two.base_url}{path}/approvals/{pending['call_id']}", json={"approve": False}
    )
    assert late.status_code == 409


async def test_a_reply_stopped_while_a_taken_over_call_waits_leaves_nothing_pending(
    stage: tuple[Cluster, httpx.AsyncClient, Model, Path],
) -> None:
    cluster, client, model, tally = stage
    one, two, path = await _start(cluster, client)
    pending = (await _until(lambda: _pending(client, one, path), "a pending call"))[0]
    one.kill()
    await _announced(client, two, path, 2)
    stopped = await client.post(f"{two.base_url}{path}/stop")
    assert stopped.status_code == 200, stopped.text
    done = await _ended(client, two, path)
    assert done["status"] == "cancelled", done
    assert await _pending(client, two, path) == []
    late = await client.post(
        f"{two.base_url}{path}/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert late.status_code == 409
    assert "denied" in late.json()["message"]
    assert not tally.exists()  # never run
    assert len(model.requests) == 1
    assert (await _answer(client, two, path))["status"] == "partial"


async def test_the_deadline_still_applies_after_a_reply_is_taken_over(
    stage: tuple[Cluster, httpx.AsyncClient, Model, Path],
) -> None:
    cluster, client, model, tally = stage
    one, two, path = await _start(cluster, client, HUMAN_TIMEOUT_SECONDS="8")
    await _until(lambda: _pending(client, one, path), "a pending call")
    one.kill()
    done = await _ended(client, two, path)  # nobody decides: denied at the deadline
    assert done["status"] == "completed", done
    assert not tally.exists()
    answer = await _answer(client, two, path)
    (step,) = answer["tool_steps"]
    assert (step["approval"], step["is_error"]) == ("denied", True)
    assert len(model.requests) == 2  # the model read the denial and answered

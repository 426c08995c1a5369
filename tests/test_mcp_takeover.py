"""Issue 27: a tool call waiting for approval survives a takeover. Real `symposia serve`
processes on one PostgreSQL database and one Redis: the owner is killed (SIGKILL) while
its bot's call waits; the worker that takes the run over finds the stored pending call,
announces it again (same id, same deadline) and waits; a decision taken on any worker runs
it once. The cut turn's model is never asked again, and a run that ends leaves no call
pending."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.databases import PostgresDatabases, pg_url
from tests.fakes.provider_server import FakeProviderServer, Received, Reply
from tests.fakes.redis_server import require_redis_sync
from tests.fakes.tool_caller import tool_caller
from tests.fakes.workers import Api, Cluster, Worker, worker_env
from tests.mcp_servers import HERE
from tests.sse import frames
from tests.test_mcp_runs import OPENAI

TIMEOUT = 30.0


class Model:
    """The fake upstream, counting each request (its model and messages) it answers."""

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
) -> AsyncIterator[tuple[Cluster, Api, Model, Path]]:
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
        OPENAI_API_KEY="sk-test-openai",
        OPENAI_BASE_URL=fake_provider.openai_base_url,
        DEFAULT_MODEL=OPENAI,
        MCP_SERVERS_FILE=str(tmp_path / "mcp.json"),
        HUMAN_TIMEOUT_SECONDS="60",
        EVENT_LOG="redis",
    )
    cluster = Cluster(env, tmp_path)
    model = Model(fake_provider)
    async with httpx.AsyncClient(timeout=10) as client:
        try:
            yield cluster, Api(client), model, tally
        finally:
            await cluster.close()


async def _start(cluster: Cluster, api: Api, **overrides: str) -> tuple[Worker, Worker, str]:
    one, two = cluster.add(overrides), cluster.add(overrides)
    await cluster.start()
    body = {
        "topic": "Count this.",
        "max_turns": 2,
        "bots": [
            {"name": "Ann", "model": OPENAI, "tools": ["counted.tally"]},
            {"name": "Bob", "model": OPENAI},
        ],
    }
    created = await api.client.post(f"{one.base_url}/api/run", json=body)
    assert created.status_code == 201, created.text
    return one, two, str(created.json()["id"])


async def _pending(api: Api, worker: Worker, run_id: str) -> list[dict[str, Any]]:
    listed = await api.client.get(f"{worker.base_url}/api/run/{run_id}/approvals")
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {TIMEOUT}s")


async def _announced(api: Api, worker: Worker, run_id: str, times: int) -> list[Any]:
    """The run's events once `times` `awaiting_input` were written (read from `worker`)."""

    async def seen() -> list[Any] | None:
        events = await _stream_so_far(api, worker, run_id)
        asked = [e for e in events if e[1] == "awaiting_input"]
        return events if len(asked) >= times else None

    found: list[Any] = await _until(seen, f"{times} awaiting_input events")
    return found


async def _stream_so_far(api: Api, worker: Worker, run_id: str) -> list[Any]:
    """What the stream holds now (the stream of a live run is read until it goes quiet)."""
    out: list[Any] = []
    url = f"{worker.base_url}/api/stream/{run_id}"
    try:
        async with api.client.stream("GET", url) as response:
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


async def _finished(api: Api, worker: Worker, run_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        summary = await api.run(worker, run_id)
        return summary if summary["status"] not in ("pending", "running") else None

    found: dict[str, Any] = await _until(done, "the run's end")
    return found


@pytest.mark.parametrize("leaving", ["killed", "shut down"])
async def test_a_call_awaiting_approval_survives_its_owner_leaving(
    stage: tuple[Cluster, Api, Model, Path], leaving: str
) -> None:
    cluster, api, model, tally = stage
    one, two, run_id = await _start(cluster, api)
    pending = (await _until(lambda: _pending(api, one, run_id), "a pending call"))[0]
    before = await _announced(api, one, run_id, 1)
    asked = next(e for e in before if e[1] == "awaiting_input")[2]
    assert len(model.requests) == 1  # Ann's model asked once: it wants the tool

    if leaving == "killed":
        one.kill()  # SIGKILL: nothing of the owner's cleanup runs
    else:
        await one.terminate()  # SIGTERM: it hands its runs over
    events = await _announced(api, two, run_id, 2)  # the new owner asks again
    again = [e for e in events if e[1] == "awaiting_input"][-1][2]
    assert again["call"] == asked["call"]  # the same call, the same id
    assert again["until"] == asked["until"]  # the same deadline
    assert [p["call_id"] for p in await _pending(api, two, run_id)] == [pending["call_id"]]

    decided = await api.client.post(
        f"{two.base_url}/api/run/{run_id}/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert decided.status_code == 200, decided.text
    summary = await _finished(api, two, run_id)
    assert summary["status"] == "completed", summary

    assert tally.read_text().splitlines() == ["seen"]  # the tool ran once
    assert len(model.requests) == len(set(model.requests))  # no model call asked twice
    assert len(model.requests) == 2  # Ann's one call, then Bob's turn
    exported = await api.transcript(two, run_id)
    ann = next(m for m in exported["messages"] if m.get("author") == "Ann")
    assert ann["status"] == "partial"  # closed as a cut turn: its model is not asked again
    (step,) = ann["tool_steps"]
    assert (step["id"], step["approval"], step["is_error"]) == (
        pending["call_id"],
        "approved",
        False,
    )
    assert step["content"] == "tallied 1"
    results = [e for e in await api.replay(two, run_id, 0) if e[1] == "tool_result"]
    assert [r[2]["content"] for r in results] == ["tallied 1"]
    assert await _pending(api, two, run_id) == []
    late = await api.client.post(
        f"{two.base_url}/api/run/{run_id}/approvals/{pending['call_id']}",
        json={"approve": False},
    )
    assert late.status_code == 409


async def test_a_run_stopped_while_a_taken_over_call_waits_leaves_nothing_pending(
    stage: tuple[Cluster, Api, Model, Path],
) -> None:
    cluster, api, model, tally = stage
    one, two, run_id = await _start(cluster, api)
    pending = (await _until(lambda: _pending(api, one, run_id), "a pending call"))[0]
    one.kill()
    await _announced(api, two, run_id, 2)
    stopped = await api.client.post(f"{two.base_url}/api/run/{run_id}/stop")
    assert stopped.status_code == 200, stopped.text
    summary = await _finished(api, two, run_id)
    assert summary["status"] == "cancelled", summary
    assert await _pending(api, two, run_id) == []
    late = await api.client.post(
        f"{two.base_url}/api/run/{run_id}/approvals/{pending['call_id']}", json={"approve": True}
    )
    assert late.status_code == 409
    assert "denied" in late.json()["message"]
    assert not tally.exists()  # never run
    assert len(model.requests) == 1
    exported = await api.transcript(two, run_id)
    assert [m["status"] for m in exported["messages"] if m.get("author") == "Ann"] == ["partial"]


async def test_the_deadline_still_applies_after_a_takeover(
    stage: tuple[Cluster, Api, Model, Path],
) -> None:
    cluster, api, _model, tally = stage
    one, two, run_id = await _start(cluster, api, HUMAN_TIMEOUT_SECONDS="8")
    await _until(lambda: _pending(api, one, run_id), "a pending call")
    one.kill()
    summary = await _finished(api, two, run_id)  # nobody decides: denied at the deadline
    assert summary["status"] == "completed", summary
    assert not tally.exists()
    exported = await api.transcript(two, run_id)
    ann = next(m for m in exported["messages"] if m.get("author") == "Ann")
    (step,) = ann["tool_steps"]
    assert (step["approval"], step["is_error"]) == ("denied", True)

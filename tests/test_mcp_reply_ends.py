"""Issue 27: however a conversation's reply ends while one of its MCP calls waits for
approval (stopped, its conversation deleted, the only server shut down), the call is
denied, never left pending, and the reply's status says how it ended. One process on
SQLite with its in-memory event log: nobody else could go on with the reply."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.domain.models import ReplyStatus
from symposia.storage.sql_approvals import ApprovalRecord
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.tool_caller import tool_caller
from tests.mcp_servers import HERE
from tests.sse import Frame, collect
from tests.test_mcp_runs import OPENAI


def _app(fake_provider: FakeProviderServer, tmp_path: Path) -> FastAPI:
    servers = {
        "counted": {
            "command": sys.executable,
            "args": [str(HERE / "fault_server.py")],
            "env": {"TALLY_FILE": str(tmp_path / "tally.txt")},
            "require_approval": {"tally": "always"},
        }
    }
    (tmp_path / "mcp.json").write_text(json.dumps(servers))
    settings = remote_settings(
        fake_provider,
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
        mcp_servers_file=str(tmp_path / "mcp.json"),
        human_timeout_seconds=60,
        chat_titles=False,
    )
    return create_app(settings)


@pytest.fixture
async def app(fake_provider: FakeProviderServer, tmp_path: Path) -> AsyncIterator[FastAPI]:
    fake_provider.responder = tool_caller({"text": "seen"})
    application = _app(fake_provider, tmp_path)
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c


async def _waiting(
    client: httpx.AsyncClient,
) -> tuple[str, dict[str, Any], asyncio.Task[list[Frame]]]:
    """A conversation whose reply waits for approval of its call: its path, the pending
    call, and the reading of its stream."""
    body = {"default_model": OPENAI, "tools": ["counted.tally"]}
    created = await client.post("/api/conversations", json=body)
    assert created.status_code == 201, created.text
    path = f"/api/conversations/{created.json()['id']}"
    said = await client.post(f"{path}/messages", json={"message": "Count this."})
    assert said.status_code == 201, said.text
    reading = asyncio.create_task(collect(client, f"{path}/stream"))
    for _ in range(400):
        listed = await client.get(f"{path}/approvals")
        if listed.json()["items"]:
            return path, dict(listed.json()["items"][0]), reading
        await asyncio.sleep(0.05)
    raise AssertionError("no call came to wait for approval")


async def _stored(app: FastAPI, path: str, call_id: str) -> ApprovalRecord | None:
    subject = f"conversation:{path.rsplit('/', 1)[1]}"
    return await container_of(app).approvals.store.get(subject, call_id)


async def test_a_reply_stopped_while_its_call_waits_denies_the_call(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path, pending, reading = await _waiting(client)
    stopped = await client.post(f"{path}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "cancelled"
    frames = await asyncio.wait_for(reading, 30)
    assert frames[-1].event == "done"
    assert frames[-1].data["status"] == "cancelled"

    assert (await client.get(f"{path}/approvals")).json()["items"] == []
    record = await _stored(app, path, pending["call_id"])
    assert record is not None
    assert (record.status, record.decided_by) == ("denied", "reply_cancelled")
    late = await client.post(f"{path}/approvals/{pending['call_id']}", json={"approve": True})
    assert late.status_code == 409
    assert "denied" in late.json()["message"]
    assert not (tmp_path / "tally.txt").exists()  # never run
    messages = (await client.get(path)).json()["messages"]
    assert [m["status"] for m in messages if m["role"] == "assistant"] == ["partial"]


async def test_deleting_a_conversation_whose_call_waits_denies_the_call(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path, pending, reading = await _waiting(client)
    deleted = await client.delete(path)
    assert deleted.status_code == 204, deleted.text
    frames = await asyncio.wait_for(reading, 30)
    assert frames[-1].event == "done"
    record = await _stored(app, path, pending["call_id"])
    assert record is None or record.status == "denied"  # gone with it, or denied
    assert not (tmp_path / "tally.txt").exists()


async def test_the_only_server_shutting_down_ends_the_reply_and_denies_its_call(
    fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    fake_provider.responder = tool_caller({"text": "seen"})
    first = _app(fake_provider, tmp_path)
    await container_of(first).start()
    transport = httpx.ASGITransport(app=first)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as client:
        path, pending, reading = await _waiting(client)
        await container_of(first).shutdown()  # its log dies with it: it ends its replies
        frames = await asyncio.wait_for(reading, 30)
    assert frames[-1].event == "done"
    assert frames[-1].data["status"] == "cancelled"

    again = _app(fake_provider, tmp_path)  # the same database, read by a new process
    await container_of(again).start()
    try:
        record = await _stored(again, path, pending["call_id"])
        assert record is not None
        assert (record.status, record.decided_by) == ("denied", "reply_cancelled")
        replies = container_of(again).conversations.replies
        reply = await replies.get(frames[0].data["in_reply_to"])  # the question's id
        assert reply is not None
        assert reply.status is ReplyStatus.CANCELLED
    finally:
        await container_of(again).shutdown()
    assert not (tmp_path / "tally.txt").exists()

"""Issue 27: agents of a run call tools of the operator's MCP servers (servers nobody here
wrote: the npm filesystem server, PyPI's mcp-server-time). The fake upstream model calls
the first tool offered with arguments built from its schema; Symposia runs the call,
streams `tool_call` and `tool_result`, feeds the result back and the model answers."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from symposia.app import container_of, create_app
from symposia.domain.events import Event
from symposia.events.replay import rebuild
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer, Received
from tests.fakes.tool_caller import tool_caller
from tests.helpers import wait_done
from tests.mcp_servers import servers_file

OPENAI = "openai/gpt-4o-mini"
ANTHROPIC = "anthropic/claude-haiku-4-5"


@pytest.fixture
async def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "pro.txt").write_text("Cities should be dense: shorter trips, cheaper transit.")
    (folder / "con.txt").write_text("Sprawl keeps housing cheap: land is abundant.")
    return folder


@pytest.fixture
async def app(
    fake_provider: FakeProviderServer, tmp_path: Path, folder: Path
) -> AsyncIterator[FastAPI]:
    settings = remote_settings(
        fake_provider,
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
        mcp_servers_file=str(servers_file(tmp_path, folder)),
    )
    application = create_app(settings)
    container = container_of(application)
    await container.start()
    yield application
    await container.shutdown()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c


def _by_type(events: list[Event], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == kind]


async def test_a_debate_whose_agents_read_different_files(
    app: FastAPI, client: httpx.AsyncClient, fake_provider: FakeProviderServer, folder: Path
) -> None:
    def path_for(request: Received) -> dict[str, Any]:
        # Ann speaks through OpenAI's wire format, Bob through Anthropic's.
        name = "pro.txt" if request.path.endswith("/chat/completions") else "con.txt"
        return {"path": str(folder / name)}

    fake_provider.responder = tool_caller(path_for)
    read = "fs.read_text_file"
    body = {
        "topic": "Dense cities or sprawl?",
        "max_turns": 2,
        "bots": [
            {"name": "Ann", "model": OPENAI, "tools": [read]},
            {"name": "Bob", "model": ANTHROPIC, "tools": [read]},
        ],
    }
    created = await client.post("/api/run", json=body)
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    container = container_of(app)
    events = await wait_done(container, run_id, timeout=60)

    calls, results = _by_type(events, "tool_call"), _by_type(events, "tool_result")
    assert [(c["name"], c["server"], c["tool"]) for c in calls] == [
        ("Ann", "fs", "read_text_file"),
        ("Bob", "fs", "read_text_file"),
    ]
    assert json.loads(calls[0]["arguments"]) == {"path": str(folder / "pro.txt")}
    assert json.loads(calls[1]["arguments"]) == {"path": str(folder / "con.txt")}
    assert [r["id"] for r in results] == [c["id"] for c in calls]
    assert "Cities should be dense" in results[0]["content"]
    assert not results[0]["is_error"]
    assert "Sprawl keeps housing cheap" in results[1]["content"]
    assert all(r["duration_ms"] >= 0 for r in results)
    said = [c["content"] for c in _by_type(events, "turn_complete")]
    assert "Cities should be dense" in said[0]
    assert "Sprawl keeps housing cheap" in said[1]
    # Each turn was two model calls: the tool call, then the answer with its result.
    asked = [r for r in fake_provider.requests if r.method == "POST"]
    assert len(asked) == 4
    offered = asked[0].body["tools"]
    assert [t["function"]["name"] for t in offered] == ["fs__read_text_file"]

    # The transcript keeps each call with its result, and a stream rebuilt from storage
    # has the tool events at the ids they had live.
    stored = await container.run_repository.get(run_id)
    assert stored is not None
    steps = [m.to_dict()["tool_steps"] for m in stored.messages if m.role == "assistant"]
    assert [s[0]["tool"] for s in steps] == ["read_text_file", "read_text_file"]
    assert "Sprawl" in steps[1][0]["content"]
    rebuilt = {e.seq: e for e in rebuild(stored).events}
    for live in events:
        if live.type in ("tool_call", "tool_result"):
            assert rebuilt[live.seq].type == live.type
            assert rebuilt[live.seq].data == live.data

    # The exports show each call and its result.
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    (step,) = exported["messages"][1]["tool_steps"]
    assert (step["server"], step["tool"], step["is_error"]) == ("fs", "read_text_file", False)
    markdown = (await client.get(f"/api/export/{run_id}.md")).text
    assert "*tool: fs.read\\_text\\_file(" in markdown
    assert "Sprawl keeps housing cheap: land is abundant." in markdown
    pdf = (await client.get(f"/api/export/{run_id}.pdf")).content
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    text = " ".join(text.split())
    assert "tool: fs.read_text_file" in text
    assert "result in" in text


async def test_tools_are_refused_where_they_cannot_work(client: httpx.AsyncClient) -> None:
    def bots(tools: list[str], model: str = OPENAI) -> dict[str, Any]:
        return {
            "topic": "t",
            "bots": [{"name": "Ann", "model": model, "tools": tools}, {"name": "Bob"}],
        }

    unknown = await client.post("/api/run", json=bots(["nope"]))
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["field"] == "bots.0.tools"
    local = await client.post("/api/run", json=bots(["time"], "local/smollm2"))
    assert local.status_code == 422, local.text
    assert local.json()["field"] == "bots.0.tools"
    assert "'Ann' cannot have tools" in local.json()["message"]
    granted_to_another = await client.post("/api/run", json=bots(["secret"]))
    assert granted_to_another.status_code == 422


async def test_api_tools_lists_servers_and_health_reports_them(
    client: httpx.AsyncClient,
) -> None:
    listed = await client.get("/api/tools")
    assert listed.status_code == 200
    servers = {s["name"]: s for s in listed.json()["items"]}
    assert "secret" not in servers  # granted to another principal only
    names = {t["name"] for t in servers["time"]["tools"]}
    assert {"get_current_time", "convert_time"} <= names
    assert "read_text_file" in {t["name"] for t in servers["fs"]["tools"]}
    health = (await client.get("/health")).json()["mcp_servers"]
    assert health["time"]["state"] == "running"
    assert health["time"]["tools"] >= 2
    assert health["secret"]["state"] == "idle"  # never started: nobody may use it

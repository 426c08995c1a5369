"""Issue 27's proof against PyPI's `mcp-server-git` (a server nobody here wrote): a chat
agent whose model calls `git_status` and `git_log` on a repository the test makes gets
the repository's real state back, and both results reach the stream and the transcript."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.tool_caller import tool_caller
from tests.sse import collect
from tests.test_mcp_runs import OPENAI

pytest.importorskip("mcp_server_git", reason="mcp-server-git is a dev dependency")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Ada", "-c", "user.email=ada@example.org", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit and one file left untracked."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README.md").write_text("hello\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "First words of the repository")
    (repo / "draft.txt").write_text("not yet added\n")
    return repo


@pytest.fixture
async def app(
    fake_provider: FakeProviderServer, tmp_path: Path, repo: Path
) -> AsyncIterator[FastAPI]:
    servers = {
        "git": {
            "command": sys.executable,
            "args": ["-m", "mcp_server_git", "--repository", str(repo)],
        }
    }
    (tmp_path / "mcp.json").write_text(json.dumps(servers))
    settings = remote_settings(
        fake_provider,
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
        mcp_servers_file=str(tmp_path / "mcp.json"),
    )
    application = create_app(settings)
    container = container_of(application)
    await container.start()
    yield application
    await container.shutdown()


async def test_an_agent_reads_a_repository_through_mcp_server_git(
    app: FastAPI, fake_provider: FakeProviderServer, repo: Path
) -> None:
    fake_provider.responder = tool_caller({"repo_path": str(repo)}, calls=2, quote=2000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as client:
        body = {"default_model": OPENAI, "tools": ["git.git_status", "git.git_log"]}
        created = await client.post("/api/conversations", json=body)
        assert created.status_code == 201, created.text
        path = f"/api/conversations/{created.json()['id']}"
        said = await client.post(f"{path}/messages", json={"message": "What changed?"})
        assert said.status_code == 201, said.text
        frames = await collect(client, f"{path}/stream")
        transcript = (await client.get(path)).json()

    calls = {f.data["id"]: f.data for f in frames if f.event == "tool_call"}
    assert {(c["server"], c["tool"]) for c in calls.values()} == {
        ("git", "git_status"),
        ("git", "git_log"),
    }
    results = {calls[f.data["id"]]["tool"]: f.data for f in frames if f.event == "tool_result"}
    assert not results["git_status"]["is_error"], results["git_status"]
    assert "draft.txt" in results["git_status"]["content"]  # untracked, as git says
    assert not results["git_log"]["is_error"], results["git_log"]
    assert "First words of the repository" in results["git_log"]["content"]
    assert frames[-1].event == "done"
    assert frames[-1].data["status"] == "completed"

    answer = next(m for m in transcript["messages"] if m["role"] == "assistant")
    steps = {s["tool"]: s for s in answer["tool_steps"]}
    assert "draft.txt" in steps["git_status"]["content"]
    assert "First words of the repository" in steps["git_log"]["content"]
    assert "First words of the repository" in answer["content"]  # the model quoted it

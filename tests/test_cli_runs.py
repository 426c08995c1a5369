"""`symposia runs list|show|export` against a live server: the listing, a transcript in
the bots' colours, and exports saved under the server's file name or `-o`."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pytest

from tests.test_cli_server import COUNTED, Server, piped, server, spawn

__all__ = ["server"]  # a fixture used here


@pytest.fixture(scope="module")
def run_id(server: Server) -> str:
    """A finished run of two turns: A counts, B quotes."""
    bots = [
        {"name": "A", "model": "scripted/count"},
        {"name": "B", "model": "scripted/echo", "system_prompt": "Quote."},
    ]
    with server.api() as client:
        response = client.post("/api/run", json={"topic": "Runs", "bots": bots, "max_turns": 2})
        assert response.status_code == 201, response.text
    created: str = response.json()["id"]
    assert server.wait_finished(created)["status"] == "completed"
    return created


def _runs(server: Server, *args: str, cwd: Path | None = None) -> str:
    result = piped("runs", *args, "--server", server.url, key=server.key, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_shows_the_run(server: Server, run_id: str) -> None:
    out = _runs(server, "list")
    header, *rows = out.splitlines()
    assert header.split() == ["id", "status", "turns", "created", "topic"]
    row = next(row for row in rows if row.startswith(run_id))
    assert row.split()[1:3] == ["completed", "2/2"]
    assert row.rstrip().endswith("Runs")


def test_show_prints_settings_and_transcript(server: Server, run_id: str) -> None:
    lines = _runs(server, "show", run_id).splitlines()
    assert lines[0] == f"run {run_id}: Runs"
    assert lines[1].startswith("status completed (ended by max_turns), policy round_robin")
    assert "  A  scripted/count" in lines
    assert "  B  scripted/echo  Quote." in lines
    turn_one = lines.index("── turn 1 · A (scripted/count)")
    assert lines[turn_one + 1] == COUNTED
    assert lines[turn_one + 2] == "── turn 2 · B (scripted/echo)"
    assert lines[turn_one + 3].startswith("You said: ")


def test_show_in_a_terminal_colours_each_bot(server: Server, run_id: str) -> None:
    child = spawn(server, "runs", "show", run_id)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "\x1b[1;36mturn 1 · A" in child.before
    assert f"\x1b[36m{COUNTED}" in child.before
    assert "\x1b[1;35mturn 2 · B" in child.before


def test_export_json_under_the_server_name_or_o(
    server: Server, run_id: str, tmp_path: Path
) -> None:
    saved = _runs(server, "export", run_id, "--format", "json", cwd=tmp_path).strip()
    with server.api() as client:
        disposition = client.get(f"/api/export/{run_id}.json").headers["content-disposition"]
    assert f'filename="{saved}"' in disposition  # the name the server gives it
    assert saved.endswith(".json")
    exported = json.loads((tmp_path / saved).read_text())
    assert exported == server.get(f"/api/export/{run_id}.json")
    assert [m["content"] for m in exported["messages"] if m["bot_index"] == 0] == [COUNTED]

    target = tmp_path / "chosen.json"
    assert _runs(server, "export", run_id, "--format", "json", "-o", str(target)).strip() == str(
        target
    )
    assert json.loads(target.read_text()) == exported

    to_stdout = _runs(server, "export", run_id, "--format", "json", "-o", "-")
    assert json.loads(to_stdout) == exported


def _served(server: Server, path: str) -> bool:
    with server.api() as client:
        return client.get(path).status_code == 200


@pytest.mark.parametrize("fmt", ["md", "pdf"])
def test_export_md_and_pdf(server: Server, run_id: str, tmp_path: Path, fmt: str) -> None:
    """The server's Markdown and PDF exports saved as they come (they arrive with the
    export work; before it, the command says the server lacks them)."""
    path = f"/api/export/{run_id}.{fmt}"
    if not _served(server, path):
        result = piped(
            "runs", "export", run_id, "--format", fmt, "--server", server.url, key=server.key
        )
        assert result.returncode == 1
        assert f"this server has no {path}" in result.stderr
        pytest.skip(f"this server has no {fmt} export yet")
    saved = tmp_path / _runs(server, "export", run_id, "--format", fmt, cwd=tmp_path).strip()
    assert saved.suffix == f".{fmt}"
    content = saved.read_bytes()
    if fmt == "md":
        with server.api() as client:
            assert content == client.get(path).content
        assert COUNTED in content.decode()
    else:  # each rendering has its own creation date: the file whole, as a PDF
        assert content.startswith(b"%PDF-")
        assert content.rstrip().endswith(b"%%EOF")


def test_export_of_an_unknown_run(server: Server, tmp_path: Path) -> None:
    result = piped(
        "runs",
        "export",
        "nope",
        "--format",
        "json",
        "--server",
        server.url,
        key=server.key,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "symposia: not found: run 'nope' not found"
    assert list(tmp_path.iterdir()) == []

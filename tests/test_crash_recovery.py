"""A server killed with SIGKILL mid-run loses no completed turn, and says the run was
interrupted when it comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from alembic.script import ScriptDirectory

from symposia.storage.migrate import alembic_config
from tests.fakes.live import free_port, serve_process, wait_until_healthy
from tests.sse import frames


def _serve(database_url: str, port: int, cwd: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "DATABASE_URL": database_url,
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.01",
        # A killed server's runs are taken over once their lease is this stale.
        "RUN_HEARTBEAT_SECONDS": "0.2",
        "RUN_LEASE_SECONDS": "1",
        **extra,
    }
    return serve_process(env, cwd)


async def _kill_mid_turn(
    database_url: str, port: int, cwd: Path, **extra: str
) -> tuple[str, list[dict[str, Any]], int]:
    """Start a run, SIGKILL the server two tokens into its fourth turn: (run id, the
    turns completed before, the last event id the viewer got)."""
    base = f"http://127.0.0.1:{port}"
    process = _serve(database_url, port, cwd, **extra)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_healthy(base, process)
            bots = [{"name": "A", "max_tokens": 15}, {"name": "B", "max_tokens": 15}]
            created = await client.post(
                "/api/run", json={"topic": "t", "bots": bots, "max_turns": 8}
            )
            run_id = created.json()["id"]
            completed: list[dict[str, Any]] = []
            tokens_of_cut = 0
            async with client.stream("GET", f"/api/stream/{run_id}") as response:
                async for frame in frames(response):
                    if frame.event == "turn_complete":
                        completed.append(frame.data)
                    elif frame.event == "token" and len(completed) == 3:
                        tokens_of_cut += 1
                        if tokens_of_cut == 2:
                            process.send_signal(signal.SIGKILL)
                            last_seen = int(frame.id or 0)
                            break
            process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return run_id, completed, last_seen


async def _settled(client: httpx.AsyncClient, run_id: str, seconds: float) -> dict[str, Any]:
    for _ in range(int(seconds * 10)):  # at start-up, or on a later heartbeat once stale
        summary: dict[str, Any] = (await client.get(f"/api/run/{run_id}")).json()
        if summary["status"] not in ("pending", "running"):
            return summary
        await asyncio.sleep(0.1)
    raise AssertionError(f"run still {summary['status']} after {seconds} s")


def test_db_upgrade_command(database_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "symposia", "db", "upgrade"],
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"database at revision {head}" in result.stdout


async def test_sigkill_mid_turn_then_restart_resumes_the_run(
    database_url: str, tmp_path: Path
) -> None:
    """Issue 11, point 4, single process: the restarted server takes the run over, keeps the
    cut turn as `partial` (its text was only in the dead process's memory), goes on from
    the next turn, and the viewer's `Last-Event-ID` still means what it meant."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    run_id, completed, last_seen = await _kill_mid_turn(database_url, port, tmp_path)
    restarted = _serve(database_url, port, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_healthy(base, restarted)
            headers = {"Last-Event-ID": str(last_seen)}
            async with client.stream("GET", f"/api/stream/{run_id}", headers=headers) as response:
                after = [f async for f in frames(response) if f.comment is None]
            summary = await _settled(client, run_id, 10)
            export = (await client.get(f"/api/export/{run_id}.json")).json()
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=15)
    assert summary["status"] == "completed"
    # One snapshot stands for the ids the lost log used (the viewer saw some of them), then
    # the numbering goes on, gap-free.
    first = after[0]
    assert first.event == "snapshot"
    assert int(first.id or 0) > last_seen
    assert first.data["first_id"] <= last_seen
    ids = [int(f.id or 0) for f in after]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert [f.event for f in after[1:4]] == ["turn_complete", "interrupted", "resumed"]
    assert after[1].data["status"] == "partial"
    assert after[1].data["turn"] == 3
    assert after[3].data == {"turn": 4, "takeovers": 1}
    assert after[4].event == "turn_start"
    assert after[4].data["turn"] == 4
    assert [f.event for f in after[-2:]] == ["run_status", "done"]
    turns = [m for m in export["messages"] if m["bot_index"] is not None]
    assert [m["turn"] for m in turns] == list(range(8))
    assert [m["status"] for m in turns] == ["complete"] * 3 + ["partial"] + ["complete"] * 4
    saved = {m["id"]: m for m in turns}
    for turn in completed:  # every turn that completed before the kill is there, intact
        assert saved[turn["message_id"]]["content"] == turn["content"]
    assert completed[0]["content"] == " ".join(str(n) for n in range(1, 16))


async def test_sigkill_mid_run_then_restart_without_resume(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    run_id, completed, _ = await _kill_mid_turn(database_url, port, tmp_path, RUN_RESUME="false")
    restarted = _serve(database_url, port, tmp_path, RUN_RESUME="false")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_healthy(base, restarted)
            summary = await _settled(client, run_id, 10)
            assert summary["status"] == "interrupted"
            assert summary["turn_count"] >= 3
            export = (await client.get(f"/api/export/{run_id}.json")).json()
            saved = {m["id"]: m for m in export["messages"]}
            for turn in completed:  # every turn that completed before the kill is there
                assert saved[turn["message_id"]]["content"] == turn["content"]
                assert saved[turn["message_id"]]["status"] == "complete"
            assert completed[0]["content"] == " ".join(str(n) for n in range(1, 16))
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=15)

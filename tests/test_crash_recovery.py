"""A server killed with SIGKILL mid-run loses no completed turn, and says the run was
interrupted when it comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from alembic.script import ScriptDirectory

from symposia.storage.migrate import alembic_config
from tests.fakes.live import free_port, serve_process, wait_until_healthy
from tests.sse import frames


def _serve(database_url: str, port: int, cwd: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "DATABASE_URL": database_url,
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.01",
        # A killed server's runs are interrupted once their heartbeat is this stale.
        "RUN_HEARTBEAT_SECONDS": "0.2",
        "RUN_STALE_SECONDS": "1",
    }
    return serve_process(env, cwd)


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


async def test_sigkill_mid_run_then_restart(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(database_url, port, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_healthy(base, process)
            bots = [{"name": "A", "max_tokens": 15}, {"name": "B", "max_tokens": 15}]
            created = await client.post(
                "/api/run", json={"topic": "t", "bots": bots, "max_turns": 20}
            )
            run_id = created.json()["id"]
            completed = []
            async with client.stream("GET", f"/api/stream/{run_id}") as response:
                async for frame in frames(response):
                    if frame.event == "turn_complete":
                        completed.append(frame.data)
                        if len(completed) == 3:
                            process.send_signal(signal.SIGKILL)
                            break
            process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    restarted = _serve(database_url, port, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_healthy(base, restarted)
            for _ in range(100):  # at start-up, or on a later heartbeat once stale
                summary = (await client.get(f"/api/run/{run_id}")).json()
                if summary["status"] != "running":
                    break
                await asyncio.sleep(0.1)
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

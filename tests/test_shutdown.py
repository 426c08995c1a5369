"""SIGTERM: the server stops accepting, ends runs as `cancelled`, and closes their streams."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.fakes.live import free_port, serve_process, wait_until_healthy
from tests.sse import frames


async def test_sigterm_cancels_runs_and_sends_streams_a_final_event(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.05",
        "SHUTDOWN_GRACE_SECONDS": "3",
    }
    process = serve_process(env, tmp_path, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            bots = [{"name": "A", "max_tokens": 2000}, {"name": "B", "max_tokens": 2000}]
            created = await client.post("/api/run", json={"topic": "t", "bots": bots})
            run_id = created.json()["id"]
            received = []
            async with client.stream("GET", f"/api/stream/{run_id}") as response:
                async for frame in frames(response):
                    if frame.comment is not None:
                        continue
                    received.append(frame)
                    if len(received) == 5:
                        process.send_signal(signal.SIGTERM)
                        signalled = time.monotonic()
            closed_after = time.monotonic() - signalled
        assert [f.event for f in received[-3:]] == ["turn_complete", "run_status", "done"]
        assert received[-3].data["status"] == "partial"
        assert received[-2].data == {"status": "cancelled", "reason": "server shutdown"}
        assert closed_after < 3
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    assert b"Traceback" not in stderr, stderr.decode()

"""`symposia serve` and WebSockets: SIGTERM sends a viewer the run's last events, then a
1001 (going away); a message over MAX_BODY_BYTES closes its socket with 1009."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.fakes.live import LiveServer, free_port, serve_without_traceback, wait_until_healthy
from tests.ws import next_frame, open_socket


async def test_sigterm_sends_the_last_events_then_closes_with_1001(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.05",
        "SHUTDOWN_GRACE_SECONDS": "3",
        "RUN_RESUME": "false",
        "MAX_BODY_BYTES": "4096",
    }
    live = LiveServer(f"http://127.0.0.1:{port}", port, None)  # type: ignore[arg-type]
    events: list[dict[str, Any]] = []
    with serve_without_traceback(env, tmp_path) as process:
        await wait_until_healthy(live.base_url, process)
        async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as client:
            bots = [{"name": "A", "max_tokens": 2000}, {"name": "B", "max_tokens": 2000}]
            created = await client.post("/api/run", json={"topic": "t", "bots": bots})
        run_id = created.json()["id"]
        async with open_socket(live, f"/api/ws/runs/{run_id}") as ws:
            await ws.send(json.dumps({"type": "say", "body": {"content": "x" * 5000}}))
            with pytest.raises(ConnectionClosed):
                await next_frame(ws)
            assert ws.close_code == 1009
        async with open_socket(live, f"/api/ws/runs/{run_id}?after=0") as ws:
            try:
                while True:
                    frame = await next_frame(ws)
                    events.append(frame)
                    if len(events) == 5:
                        process.send_signal(signal.SIGTERM)
            except ConnectionClosed:
                pass
            code = ws.close_code
        assert [e["event"] for e in events[-3:]] == ["turn_complete", "run_status", "done"]
        assert events[-2]["data"]["status"] == "cancelled"
        assert code == 1001
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)

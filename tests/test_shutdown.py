"""SIGTERM: the server stops accepting, ends runs as `cancelled`, and closes their streams;
`/v1` streams end with an OpenAI error chunk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.fakes.live import free_port, serve_process, serve_without_traceback, wait_until_healthy
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.sse import Frame, frames


def _env(port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.05",
        "SHUTDOWN_GRACE_SECONDS": "3",
        **extra,
    }


async def _sigterm_after(
    client: httpx.AsyncClient, process: subprocess.Popen[bytes], run_id: str, frames_seen: int
) -> tuple[list[Frame], float]:
    """Watch the run, SIGTERM the server after `frames_seen` events; what the viewer got
    (its response must end cleanly: a cut would raise) and how long after the signal."""
    received: list[Frame] = []
    async with client.stream("GET", f"/api/stream/{run_id}") as response:
        async for frame in frames(response):
            if frame.comment is not None:
                continue
            received.append(frame)
            if len(received) == frames_seen:
                process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
    return received, time.monotonic() - signalled


async def test_sigterm_without_resume_cancels_runs_and_sends_streams_a_final_event(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_without_traceback(_env(port, RUN_RESUME="false"), tmp_path) as process:
        await wait_until_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            bots = [{"name": "A", "max_tokens": 2000}, {"name": "B", "max_tokens": 2000}]
            created = await client.post("/api/run", json={"topic": "t", "bots": bots})
            received, closed_after = await _sigterm_after(client, process, created.json()["id"], 5)
        assert [f.event for f in received[-3:]] == ["turn_complete", "run_status", "done"]
        assert received[-3].data["status"] == "partial"
        assert received[-2].data == {
            "status": "cancelled",
            "reason": "server shutdown",
            "ended_by": "stop",
        }
        assert closed_after < 3
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)


async def test_sigterm_hands_runs_over_and_a_restart_goes_on_from_the_next_turn(
    tmp_path: Path,
) -> None:
    """Issue 11, points 4 and 5 for the embedded default (one process, SQLite, memory log):
    SIGTERM cuts the turn (kept `partial`), says `interrupted`, ends the viewer's response
    cleanly; the restarted server resumes the run, numbering on after the last id seen."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_without_traceback(_env(port), tmp_path) as process:
        await wait_until_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            bots = [{"name": "A", "max_tokens": 2000}, {"name": "B", "max_tokens": 5}]
            body = {"topic": "t", "bots": bots, "max_turns": 2}
            run_id = (await client.post("/api/run", json=body)).json()["id"]
            before, closed_after = await _sigterm_after(client, process, run_id, 5)
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert [f.event for f in before[-2:]] == ["turn_complete", "interrupted"]
    assert before[-2].data["status"] == "partial"
    cut_text = before[-2].data["content"]
    assert before[-1].data == {"reason": "handed over: the server is shutting down", "turn": 1}
    assert closed_after < 3 + 2  # the grace for the turn, then the handover itself
    last_seen = int(before[-1].id)

    process = serve_process(_env(port), tmp_path, stderr=subprocess.PIPE)
    try:
        await wait_until_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            headers = {"Last-Event-ID": str(last_seen)}
            async with client.stream("GET", f"/api/stream/{run_id}", headers=headers) as response:
                after = [f async for f in frames(response) if f.comment is None]
            run = (await client.get(f"/api/run/{run_id}")).json()
            transcript = (await client.get(f"/api/export/{run_id}.json")).json()
    finally:
        process.terminate()
        process.wait(timeout=15)
        _, stderr = process.communicate(timeout=10)
    assert b"Traceback" not in stderr, stderr.decode()
    assert [int(f.id) for f in after] == list(range(last_seen + 1, last_seen + 1 + len(after)))
    assert after[0].event == "resumed"
    assert after[0].data == {"turn": 1, "takeovers": 1}
    assert after[1].event == "turn_start"
    assert after[1].data["turn"] == 1
    assert [f.event for f in after[-2:]] == ["run_status", "done"]
    assert run["status"] == "completed"
    messages = transcript["messages"]
    turns = [m for m in messages if m["bot_index"] is not None]
    assert [(m["turn"], m["author"], m["status"]) for m in turns] == [
        (0, "A", "partial"),
        (1, "B", "complete"),
    ]
    assert turns[0]["content"] == cut_text
    assert cut_text


async def test_sigterm_ends_v1_streams_with_an_error_chunk_and_closes_their_upstream(
    tmp_path: Path, fake_provider: FakeProviderServer
) -> None:
    """Issue 10, point 4: no silence then a cut, but an OpenAI error chunk at once."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DEV_MODE": "true",
        "OPENAI_API_KEY": "sk-test-openai",
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "SHUTDOWN_GRACE_SECONDS": "3",
    }
    fake_provider.enqueue("openai", Reply(tokens=[f" t{i}" for i in range(400)], delay=0.05))
    process = serve_process(env, tmp_path, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    try:
        await wait_until_healthy(base, process)
        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as reply,
        ):
            received = []
            async for line in reply.aiter_lines():  # a cut would raise here
                if not line.startswith("data: "):
                    continue
                received.append(line.removeprefix("data: "))
                if len(received) == 4:
                    process.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
            ended_after = time.monotonic() - signalled
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    last = json.loads(received[-1])
    assert last == {
        "error": {
            "message": "the server is shutting down",
            "type": "server_error",
            "param": None,
            "code": "server_shutdown",
        }
    }
    assert "[DONE]" not in received
    assert all("choices" in json.loads(chunk) for chunk in received[:-1])
    assert ended_after < 2
    assert fake_provider.disconnects, "the upstream call was not closed"
    assert fake_provider.disconnects[0] - signalled < 2
    log = stderr.decode()
    assert "Traceback" not in log, log
    assert "timed out" not in log, log
    assert "exceeded" not in log, log

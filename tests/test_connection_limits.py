"""Idle and half-sent connections cannot hold the server (issue 22 point 5): read deadlines
and a connection cap under `symposia serve` (httptools), run as a process, one of them
under a lowered file descriptor limit."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.live import free_port, wait_until_healthy

HALF_HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\n"


def _serve(
    tmp_path: Path, preexec: Callable[[], None] | None = None, **env: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    values = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BASIC_AUTH", "REDIS_URL", "DATABASE_URL", "EVENT_LOG"))
    }
    values.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DEV_MODE": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
            "LOG_LEVEL": "WARNING",
            **env,
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "symposia", "serve"],
        env=values,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=preexec,  # only setrlimit, between fork and exec
    )
    return process, port


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
        assert b"Traceback" not in stderr, stderr.decode()


async def _open(port: int, data: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before closing (b"" for a close without a word)."""
    async with asyncio.timeout(within):
        return await reader.read()


async def test_slow_heads_and_bodies_are_cut_off(
    tmp_path: Path, stop: list[subprocess.Popen[bytes]]
) -> None:
    """Slowloris (a header byte every 0.3 s), a connection that says nothing, and a body
    that stops half-way: closed after their deadlines, 408 for the heads."""
    process, port = _serve(tmp_path, HEADER_READ_TIMEOUT_SECONDS="1", BODY_READ_TIMEOUT_SECONDS="1")
    stop.append(process)
    await wait_until_healthy(f"http://127.0.0.1:{port}", process)
    started = time.monotonic()
    slow = [await _open(port, HALF_HEAD) for _ in range(10)]
    silent = [await _open(port) for _ in range(10)]
    half_body = b"POST /api/run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"
    bodies = [await _open(port, half_body) for _ in range(3)]

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for _ in range(20):
            await asyncio.sleep(0.3)
            if writer.is_closing():
                return
            try:
                writer.write(b"X")
                await writer.drain()
            except ConnectionError:
                return

    trickling = [asyncio.create_task(trickle(w)) for _, w in slow]
    answers = await asyncio.gather(*(_answer(r, 5) for r, _ in slow + silent + bodies))
    elapsed = time.monotonic() - started
    for task in trickling:
        task.cancel()
    for _, writer in slow + silent + bodies:
        writer.close()
    assert elapsed < 4, elapsed
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers[:20]), answers[:20]
    assert all(not a.startswith(b"HTTP/1.1 2") for a in answers[20:]), answers[20:]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/health")).status_code == 200  # a whole request is fine


def _lowered(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@pytest.mark.slow
async def test_half_sent_requests_past_the_descriptor_limit_leave_health_answering(
    tmp_path: Path, stop: list[subprocess.Popen[bytes]]
) -> None:
    """256 descriptors (hard limit too: not raised), 300 half-sent requests that never
    finish within the 10 s head deadline: the cap (96 connections) closes the longest
    waiting ones, so /health still answers at once."""
    process, port = _serve(tmp_path, _lowered(256))
    stop.append(process)
    await wait_until_healthy(f"http://127.0.0.1:{port}", process)
    attackers = [await _open(port, HALF_HEAD) for _ in range(300)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        started = time.monotonic()
        for _ in range(5):
            assert (await client.get("/health")).status_code == 200
        assert time.monotonic() - started < 3
    first = await _answer(attackers[0][0], 2)  # the earliest were closed to make room
    assert first == b""
    for _, writer in attackers:
        writer.close()
    assert process.poll() is None


async def test_past_the_cap_with_every_connection_busy_the_next_gets_503(
    tmp_path: Path, stop: list[subprocess.Popen[bytes]]
) -> None:
    process, port = _serve(tmp_path, MAX_CONNECTIONS="4")
    stop.append(process)
    await wait_until_healthy(f"http://127.0.0.1:{port}", process)
    half_body = b"POST /api/run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"
    busy = [await _open(port, half_body) for _ in range(4)]  # requests in progress
    await asyncio.sleep(0.2)
    started = time.monotonic()
    reader, writer = await _open(port)
    answer = await _answer(reader, 2)
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert b"too many open connections" in answer
    assert time.monotonic() - started < 1
    writer.close()
    for _, busy_writer in busy:
        busy_writer.close()
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/health")).status_code == 200  # room again

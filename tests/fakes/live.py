"""Run an ASGI app under a real uvicorn server on a free loopback port, inside a test; or
`symposia serve` itself as a process."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp


@dataclass
class LiveServer:
    base_url: str
    port: int
    server: uvicorn.Server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def start_live_server(app: ASGIApp) -> AsyncIterator[LiveServer]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", port, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


def serve_process(
    env: Mapping[str, str], cwd: Path, stderr: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`symposia serve` as a child process, configured by `env`, started in `cwd`."""
    return subprocess.Popen(
        [sys.executable, "-m", "symposia", "serve"],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


@contextmanager
def serve_without_traceback(env: Mapping[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`symposia serve` for a test that stops it: killed if still running when the test is
    done with it, and its stderr must then hold no traceback."""
    process = serve_process(env, cwd, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    assert b"Traceback" not in stderr, stderr.decode()


async def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll `/health` of a server started as a subprocess until it answers 200."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(300):
            assert process.poll() is None, "server exited during start-up"
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("server did not start")

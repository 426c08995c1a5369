"""`symposia serve --workers N`, as real processes: refused without a shared event log;
with PostgreSQL and Redis, two workers on one socket serve each other's runs, a worker that
dies is replaced, and SIGTERM to the supervisor ends every worker gracefully.

Which worker serves a request is read from the operating system: the worker that holds
the server end of the request's TCP connection (/proc/net/tcp and /proc/<pid>/fd).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.databases import pg_url, truncate
from tests.fakes.live import free_port
from tests.fakes.redis_server import REDIS_URL, require_redis
from tests.sse import Frame, frames

SERVE = [sys.executable, "-m", "symposia.cli", "serve"]
GRACE = 3.0
pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="finds a request's worker through Linux's /proc"
)


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["--workers", "2"], {}, ["REDIS_URL", "DATABASE_URL"]),
        (["--workers", "3"], {"REDIS_URL": REDIS_URL, "EVENT_LOG": "memory"}, ["EVENT_LOG"]),
        (["--workers", "0"], {}, ["--workers", "at least 1"]),
        (["--workers", "two"], {}, ["--workers", "at least 1"]),
    ],
)
def test_workers_are_refused_without_a_shared_event_log(
    tmp_path: Path, args: list[str], env: dict[str, str], names: list[str]
) -> None:
    done = subprocess.run(
        [*SERVE, "--port", str(free_port()), *args],
        env={**os.environ, "DEV_MODE": "true", **env},
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2
    message = done.stderr.decode().strip().splitlines()[-1]
    for name in names:
        assert name in message
    assert list(tmp_path.iterdir()) == []  # refused before anything started: no database


@pytest.fixture
async def redis_up() -> None:
    await require_redis()


@pytest.fixture
async def shared_env(redis_up: None, postgres_session_db: str) -> dict[str, str]:
    """Settings for workers sharing PostgreSQL and Redis, runs that stream for a while."""
    await truncate(postgres_session_db)
    return {
        **os.environ,
        "DATABASE_URL": pg_url(postgres_session_db),
        "REDIS_URL": REDIS_URL,
        "EVENT_LOG_RETENTION_SECONDS": "60",
        "DEV_MODE": "true",
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.02",
        "SHUTDOWN_GRACE_SECONDS": str(GRACE),
    }


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> set[int]:
        """The supervisor's live worker processes (not its resource tracker, not zombies)."""
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            if ppid == self.process.pid and b"spawn_main" in cmdline:
                found.add(int(entry.name))
        return found

    def worker_of(self, response: httpx.Response) -> int:
        """The worker holding the server end of `response`'s connection."""
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        sockets = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if (local, remote) == (self.port, client_port):
                sockets.add(f"socket:[{fields[9]}]")
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if os.readlink(fd) in sockets:
                        return pid
                except OSError:
                    continue
        raise AssertionError(f"no worker holds the connection from port {client_port}")

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def serving(env: dict[str, str], cwd: Path, workers: int = 2) -> AsyncIterator[Served]:
    """`symposia serve --workers N` in its own process group, killed whole at the end."""
    port, log = free_port(), cwd / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    served = Served(process, port, log)
    try:
        yield served
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


async def each_worker(served: Served, count: int, within: float = 20) -> set[int]:
    """New connections until `count` distinct workers have each answered `/health`."""
    answered: set[int] = set()
    deadline = time.monotonic() + within
    while len(answered) < count:
        assert served.process.poll() is None, served.stderr()
        assert time.monotonic() < deadline, f"workers answering: {sorted(answered)}"
        try:
            async with (
                httpx.AsyncClient(base_url=served.base_url, timeout=5) as client,
                client.stream("GET", "/health") as response,
            ):
                if response.status_code == 200:
                    answered.add(served.worker_of(response))
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    return answered


@asynccontextmanager
async def stream_on_other_worker(
    served: Served, path: str, not_on: int
) -> AsyncIterator[httpx.Response]:
    """GET `path` as a stream over a connection that a worker other than `not_on` took."""
    for _ in range(100):
        async with (
            httpx.AsyncClient(base_url=served.base_url, timeout=10) as client,
            client.stream("GET", path) as response,
        ):
            if served.worker_of(response) != not_on:
                yield response
                return
    raise AssertionError(f"every connection went to worker {not_on}")


async def read_events(response: httpx.Response) -> list[Frame]:
    assert response.status_code == 200
    return [frame async for frame in frames(response) if frame.comment is None]


def assert_gap_free(events: list[Frame]) -> None:
    assert [frame.seq for frame in events] == list(range(1, len(events) + 1))


async def test_two_workers_serve_each_others_runs(
    shared_env: dict[str, str], tmp_path: Path
) -> None:
    async with serving(shared_env, tmp_path) as served:
        # Requests landed on both worker processes.
        assert await each_worker(served, 2) == served.workers()
        bots = [{"name": "A", "max_tokens": 40}, {"name": "B", "max_tokens": 40}]
        body = {"topic": "t", "bots": bots, "max_turns": 2}
        async with (
            httpx.AsyncClient(base_url=served.base_url, timeout=10) as client,
            client.stream("POST", "/api/run", json=body) as created,
        ):
            assert created.status_code == 201
            creator = served.worker_of(created)
            await created.aread()
            run_id = created.json()["id"]
        async with (
            stream_on_other_worker(served, f"/api/stream/{run_id}", creator) as stream,
            httpx.AsyncClient(base_url=served.base_url, timeout=10) as client,
        ):
            # The viewer joined while the run was generated: it follows it live.
            assert (await client.get(f"/api/run/{run_id}")).json()["status"] == "running"
            events = await read_events(stream)
        assert_gap_free(events)
        assert [f.event for f in events].count("turn_complete") == 2
        assert events[-2].event == "run_status"
        assert events[-2].data["status"] == "completed"
        assert events[-1].event == "done"
        async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as client:
            assert (await client.get(f"/api/run/{run_id}")).json()["status"] == "completed"


async def test_two_workers_start_on_a_new_sqlite_file(redis_up: None, tmp_path: Path) -> None:
    """SQLite serves workers on one machine; the supervisor migrates the new file first,
    or the workers would race to create the same tables."""
    env = {**os.environ, "REDIS_URL": REDIS_URL, "DEV_MODE": "true"}
    async with serving(env, tmp_path, workers=3) as served:
        assert len(await each_worker(served, 3)) == 3
    assert (tmp_path / "symposia.db").exists()
    assert "Traceback" not in served.stderr(), served.stderr()


async def test_a_killed_worker_is_replaced(shared_env: dict[str, str], tmp_path: Path) -> None:
    async with serving(shared_env, tmp_path) as served:
        first = await each_worker(served, 2)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=served.base_url, timeout=5) as client:
            assert (await client.get("/health")).status_code == 200  # the other one answers
        deadline = time.monotonic() + 20
        while len(served.workers() - {victim}) < 2:
            assert time.monotonic() < deadline, served.stderr()
            await asyncio.sleep(0.1)
        replaced = served.workers()
        assert victim not in replaced
        assert len(replaced & first) == 1
        assert await each_worker(served, 2) == replaced  # the new worker serves too


async def test_sigterm_to_the_supervisor_ends_every_worker_gracefully(
    shared_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**shared_env, "RUN_RESUME": "false"}  # SIGTERM cancels runs (no takeover)
    async with serving(env, tmp_path) as served:
        workers = await each_worker(served, 2)
        bots = [{"name": "A", "max_tokens": 2000}, {"name": "B", "max_tokens": 2000}]
        async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as client:
            run_id = (await client.post("/api/run", json={"topic": "t", "bots": bots})).json()["id"]
            received = []
            async with client.stream("GET", f"/api/stream/{run_id}") as response:
                async for frame in frames(response):
                    if frame.comment is not None:
                        continue
                    received.append(frame)
                    if len(received) == 5:
                        served.process.send_signal(signal.SIGTERM)
                        signalled = time.monotonic()
            closed_after = time.monotonic() - signalled
        # Each worker's GracefulServer ends the run before uvicorn drains connections:
        # plain uvicorn would hold the stream open for the whole drain timeout.
        assert_gap_free(received)
        assert [f.event for f in received[-2:]] == ["run_status", "done"]
        assert received[-2].data["status"] == "cancelled"
        assert closed_after < GRACE
        assert served.process.wait(timeout=GRACE + 5) == 0, served.stderr()
        exited_after = time.monotonic() - signalled
        assert exited_after < GRACE + 2, served.stderr()
        assert not [pid for pid in workers if _alive(pid)]
    assert "Traceback" not in served.stderr(), served.stderr()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

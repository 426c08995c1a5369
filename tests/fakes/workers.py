"""Several `symposia serve` processes on one PostgreSQL database and one Redis, and SSE
viewers that follow a run across them.

Each worker is a real process on its own loopback port, in a session of its own so the
teardown can kill its whole process group; its log goes to a file that a failing test
shows. A `Viewer` reads a run's stream and, when its connection ends without `done` (its
worker was killed or restarted), reconnects to another live worker with `Last-Event-ID`,
as a browser's EventSource does. Redis and PostgreSQL being down skips a test, or fails it
when CI is set (as `databases.py` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.fakes.live import free_port
from tests.fakes.redis_server import REDIS_URL
from tests.sse import frames

START_SECONDS = 30.0  # a loaded 2-core machine starts Python slowly
STOP_SECONDS = 20.0
LOG_TAIL_LINES = 40


def redis_has(key: str) -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(client.exists(key))
    finally:
        client.close()


@dataclass
class Worker:
    """One `symposia serve` process, on a port it keeps across restarts."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    args: tuple[str, ...] = ()  # more `serve` options, such as `--workers 2`
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name} starts on port {self.port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "symposia.cli", "serve"),
                    *("--port", str(self.port), *self.args),
                ],
                env=self.env,
                cwd=self.log_path.parent,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group, killed whole at teardown
            )

    async def wait_healthy(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.running, f"{self.name} exited during start-up:\n{self.log_tail()}"
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not start in {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-whatever, as on a machine loss."""
        assert self.process is not None
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=STOP_SECONDS)

    async def terminate(self, timeout: float = STOP_SECONDS) -> int:
        """SIGTERM to the server (what an orchestrator sends), then its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=STOP_SECONDS)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # it is already gone
            os.killpg(self.process.pid, signum)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    """Workers sharing `env` (a database and Redis); each may override some settings."""

    env: dict[str, str]
    directory: Path
    workers: list[Worker] = field(default_factory=list)
    viewers: list[Viewer] = field(default_factory=list)

    def add(self, overrides: Mapping[str, str] | None = None, *args: str) -> Worker:
        index = len(self.workers) + 1
        worker = Worker(
            name=f"worker {index}",
            port=free_port(),
            env={**self.env, **(overrides or {})},
            log_path=self.directory / f"worker-{index}.log",
            args=args,
        )
        self.workers.append(worker)
        return worker

    async def start(self, *workers: Worker) -> None:
        """Start these workers (all when none is named) together, and wait until each
        answers `/health`."""
        chosen = workers or tuple(self.workers)
        for worker in chosen:
            worker.start()
        await asyncio.gather(*(worker.wait_healthy() for worker in chosen))

    def alive(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.running]

    def other_than(self, worker: Worker) -> Worker:
        """The next live worker after `worker` in order (itself only when it is alone)."""
        index = self.workers.index(worker)
        for step in range(1, len(self.workers) + 1):
            candidate = self.workers[(index + step) % len(self.workers)]
            if candidate.running:
                return candidate
        return worker

    async def close(self) -> None:
        """Stop the viewers still following (a test that failed leaves some), then kill
        every worker's process group."""
        for viewer in self.viewers:
            viewer.task.cancel()
        await asyncio.gather(*(viewer.task for viewer in self.viewers), return_exceptions=True)
        for worker in self.workers:
            worker.cleanup()

    def logs(self) -> str:
        return "\n".join(f"== {w.name}\n{w.log_tail()}" for w in self.workers)


def worker_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment every worker of a test shares: this one (the test's sources on
    PYTHONPATH), the database, Redis, scripted models, short leases and heartbeats."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "DEV_MODE": "true",
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": "0.05",
        "RUN_LEASE_SECONDS": "3",
        "RUN_HEARTBEAT_SECONDS": "0.5",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "SSE_HEARTBEAT_SECONDS": "1",
        # Finished streams leave the shared Redis soon; their transcripts stay in the database.
        "EVENT_LOG_RETENTION_SECONDS": "60",
        # The limiter lives in the shared Redis: the tests' runs must not trip it.
        "RATE_LIMIT_RUNS": "10000/minute",
        "MAX_CONCURRENT_RUNS_PER_PRINCIPAL": "20",
        "LOG_LEVEL": "INFO",
    }
    env.update(settings)
    return env


@dataclass(frozen=True, slots=True)
class Received:
    """One event as a viewer got it, from which worker, when (monotonic)."""

    id: int
    event: str
    data: Any
    worker: str
    at: float

    @property
    def key(self) -> tuple[int, str, Any]:
        """What two viewers of the same run must agree on."""
        return (self.id, self.event, self.data)


@dataclass(frozen=True, slots=True)
class Connection:
    worker: str
    last_event_id: int  # what it sent; 0: from the start
    status: int
    ended: str  # "done", "closed" (the response ended without `done`) or an error name


class Viewer:
    """Follows one run's stream to its `done`, reconnecting to another live worker with
    `Last-Event-ID` whenever a connection ends before it."""

    def __init__(self, cluster: Cluster, run_id: str, first: Worker) -> None:
        self.cluster = cluster
        self.run_id = run_id
        self.first = first
        self.events: list[Received] = []
        self.connections: list[Connection] = []
        self._arrived = asyncio.Event()
        self.task = asyncio.create_task(self._follow(), name=f"viewer-{run_id}")
        cluster.viewers.append(self)

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else 0

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].event == "done"

    async def _follow(self) -> None:
        worker = self.first
        timeout = httpx.Timeout(10, connect=2)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while not self.finished:
                after = self.last_id
                headers = {"Last-Event-ID": str(after)} if after else {}
                status, ended = 0, "closed"
                try:
                    url = f"{worker.base_url}/api/stream/{self.run_id}"
                    async with client.stream("GET", url, headers=headers) as response:
                        status = response.status_code
                        if status != 200:
                            body = (await response.aread()).decode(errors="replace")
                            raise AssertionError(f"{worker.name} answered {status}: {body}")
                        async for frame in frames(response):
                            if frame.comment is not None:
                                continue
                            self._take(frame.seq, frame.event or "", frame.data, worker.name)
                            if frame.event == "done":
                                ended = "done"
                                break
                except httpx.TransportError as exc:
                    ended = type(exc).__name__
                self.connections.append(Connection(worker.name, after, status, ended))
                if not self.finished:
                    worker = self.cluster.other_than(worker)
                    await asyncio.sleep(0.05)

    def _take(self, seq: int, event: str, data: Any, worker: str) -> None:
        self.events.append(Received(seq, event, data, worker, time.monotonic()))
        self._arrived.set()

    async def wait_for(self, predicate: Any, timeout: float = 20) -> Received:
        """The first event (already received or to come) for which `predicate` is true."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for received in self.events[seen:]:
                if predicate(received):
                    return received
            seen = len(self.events)
            if self.task.done():
                self.task.result()
                raise AssertionError(f"the stream of {self.run_id} ended without it")
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no such event on {self.run_id} in {timeout}s"
            with contextlib.suppress(TimeoutError):  # the assert above reports it
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_done(self, timeout: float = 30) -> list[Received]:
        """Every event, once `done` came; else a failure saying where the stream stopped."""
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            last = [e.key for e in self.events[-3:]]
            raise AssertionError(
                f"no `done` on {self.run_id} in {timeout}s; last events {last}, "
                f"connections {self.connections}\n{self.cluster.logs()}"
            ) from None
        return self.events


def gap_free(events: list[Received]) -> bool:
    return [e.id for e in events] == list(range(1, len(events) + 1))


@dataclass(frozen=True, slots=True)
class Turn:
    turn: int
    bot: int
    name: str
    content: str
    status: str


def reassembled(events: list[Received]) -> dict[str, Turn]:
    """Each saved turn's text as a viewer rebuilds it: the token deltas since its
    `turn_start` (a `snapshot` replaces them with the whole text), keyed by message id.
    Checks on the way that each `turn_complete` carries the text its tokens spelled."""
    texts: dict[tuple[int, int], list[str]] = {}
    turns: dict[str, Turn] = {}
    for received in events:
        data = received.data
        if received.event == "turn_start":
            texts[(data["turn"], data["bot"])] = []
        elif received.event == "token":
            texts[(data["turn"], data["bot"])].append(data["delta"])
        elif received.event == "snapshot":
            for message in data["messages"]:
                texts[(message["turn"], message["bot"])] = [message["content"]]
        elif received.event == "turn_complete":
            text = "".join(texts.pop((data["turn"], data["bot"])))
            assert text == data["content"], f"turn {data['turn']}: tokens {text!r} vs {data!r}"
            if data["message_id"] is not None:
                turns[data["message_id"]] = Turn(
                    data["turn"], data["bot"], data["name"], text, data["status"]
                )
    return turns


def stored_turns(transcript: dict[str, Any]) -> dict[str, Turn]:
    """The bots' messages of an exported run (`/api/export/{id}.json`), keyed by id."""
    return {
        m["id"]: Turn(m["turn"], m["bot_index"], m["author"], m["content"], m["status"])
        for m in transcript["messages"]
        if m["bot_index"] is not None
    }


@dataclass
class Api:
    """Plain JSON calls to one worker or another."""

    client: httpx.AsyncClient

    async def create_run(self, worker: Worker, turns: int, max_tokens: int) -> str:
        bots = [{"name": name, "max_tokens": max_tokens} for name in ("A", "B")]
        body = {"topic": "count", "bots": bots, "max_turns": turns}
        response = await self.client.post(f"{worker.base_url}/api/run", json=body)
        assert response.status_code == 201, response.text
        run_id: str = response.json()["id"]
        return run_id

    async def run(self, worker: Worker, run_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{worker.base_url}/api/run/{run_id}")
        assert response.status_code == 200, response.text
        summary: dict[str, Any] = response.json()
        return summary

    async def transcript(self, worker: Worker, run_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{worker.base_url}/api/export/{run_id}.json")
        assert response.status_code == 200, response.text
        exported: dict[str, Any] = response.json()
        return exported

    async def replay(self, worker: Worker, run_id: str, after: int) -> list[tuple[int, str, Any]]:
        """The stream after `after`, read to its end on one connection (a finished stream
        answers a reconnection at its end with 204: nothing left)."""
        headers = {"Last-Event-ID": str(after)} if after else {}
        url = f"{worker.base_url}/api/stream/{run_id}"
        out: list[tuple[int, str, Any]] = []
        async with self.client.stream("GET", url, headers=headers) as response:
            if response.status_code == 204:
                return out
            assert response.status_code == 200, await response.aread()
            async for frame in frames(response):
                if frame.comment is None:
                    out.append((frame.seq, frame.event or "", frame.data))
        return out

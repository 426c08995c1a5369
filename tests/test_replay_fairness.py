"""Replaying a long finished run must not freeze the server (issue 10, point 1).

The viewers and the `/health` probe are plain blocking sockets in threads, as clients in
other processes would be: they read as fast as the kernel lets them, so nothing but the
server's own scheduling can hold `/health` back. The server runs in the test's loop.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import pytest

from symposia.container import Container
from symposia.domain.events import Event
from symposia.domain.models import Run, RunStatus
from symposia.server import tune_garbage_collector
from symposia.services.runs import default_bots
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import LiveServer

EVENTS = 60_000  # a finished run of about fifteen 4,096-token turns
VIEWERS = 6
DELTA = "lorem ipsum dolor sit amet, consectetur adipiscing elit; "  # ~ one token's frame
BIG_DELTA = DELTA * 20  # a frame of about 1 KB: socket buffers hold few of them
HEALTH_BOUND_SECONDS = 1.0  # a loaded 2-core machine answers in well under this


@pytest.fixture
def settings() -> Settings:
    return make_settings()


class CollectorPauses:
    """Seconds this process spent in garbage collections, to tell a stall of the whole
    process from a server that made /health wait behind the replays."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began


@pytest.fixture
def pauses() -> Iterator[CollectorPauses]:
    """The garbage collector as `symposia serve` sets it (server.tune_garbage_collector),
    its pauses counted. Deep into the suite this process holds what a thousand tests left
    behind; /health once waited 1.25 s in a CI run, where alone it waits milliseconds."""
    threshold = gc.get_threshold()
    tune_garbage_collector()
    counted = CollectorPauses()
    gc.callbacks.append(counted)
    yield counted
    gc.callbacks.remove(counted)
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def _finished_run(container: Container, delta: str = DELTA) -> str:
    """A completed run whose live log still holds `events` events, as after a long run."""
    run = Run(topic="t", bots=default_bots("scripted/echo", 100), max_turns=1, owner="dev")
    await container.run_repository.add(run)
    await container.run_repository.set_status(run.id, RunStatus.COMPLETED)
    await container.log.create(run.id)
    data = {"turn": 1, "bot": 0, "name": "Ada", "delta": delta}  # shared: keeps memory low
    for _ in range(EVENTS - 1):
        await container.log.append(run.id, "token", data)
    await container.log.append(run.id, "done", {"status": "completed"})
    await container.log.close(run.id)
    return run.id


def _request(port: int, path: str, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(60)
    if receive_buffer is not None:  # before connecting, so the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    return sock


def _read_to_end(port: int, path: str) -> bytes:
    with _request(port, path) as sock:
        chunks = []
        while data := sock.recv(1 << 20):
            chunks.append(data)
        return b"".join(chunks)


class HealthProbe(threading.Thread):
    """Asks `/health` again and again until stopped: (started, seconds, status line) each."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.answered = threading.Event()
        self.answers: list[tuple[float, float, bytes]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            answer = _read_to_end(self.port, "/health")
            status = answer.split(b"\r\n", 1)[0]
            self.answers.append((started, time.perf_counter() - started, status))
            self.answered.set()
            time.sleep(0.02)


async def test_health_answers_quickly_while_viewers_replay_a_long_run(
    live: LiveServer, container: Container, pauses: CollectorPauses
) -> None:
    run_id = await _finished_run(container)
    probe = HealthProbe(live.port)
    probe.start()
    try:
        assert await asyncio.to_thread(probe.answered.wait, 30)  # going before the replays
        replays = [
            asyncio.to_thread(_read_to_end, live.port, f"/api/stream/{run_id}")
            for _ in range(VIEWERS)
        ]
        started = time.perf_counter()
        bodies = await asyncio.wait_for(asyncio.gather(*replays), 90)
        ended = time.perf_counter()
    finally:
        probe.stop.set()
        await asyncio.to_thread(probe.join, 30)
    slowest = max(seconds for _, seconds, _ in probe.answers)
    assert slowest < HEALTH_BOUND_SECONDS, (
        f"/health took {slowest:.2f} s while {VIEWERS} viewers replayed "
        f"{EVENTS} events each (the replays took {ended - started:.2f} s; garbage "
        f"collections paused the process {pauses.seconds:.2f} s)"
    )
    assert {status for _, _, status in probe.answers} == {b"HTTP/1.1 200 OK"}
    during = [a for a in probe.answers if started <= a[0] and a[0] + a[1] <= ended]
    assert during, "no /health answer came while the replays were going on"
    for body in bodies:  # each viewer got every event, once, in order
        ids = [int(line[4:]) for line in body.split(b"\n") if line.startswith(b"id: ")]
        assert ids == list(range(1, EVENTS + 1))


def _counting(batches: Callable[..., AsyncIterator[Sequence[Event]]], pulled: list[int]) -> object:
    async def counted(*args: object, **kwargs: object) -> AsyncIterator[Sequence[Event]]:
        async for batch in batches(*args, **kwargs):
            pulled[0] += len(batch)
            yield batch

    return counted


async def test_a_viewer_that_leaves_mid_replay_stops_consuming_the_log(
    live: LiveServer, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await _finished_run(container, BIG_DELTA)
    pulled = [0]
    monkeypatch.setattr(container.log, "batches", _counting(container.log.batches, pulled))

    def read_a_little_then_leave() -> float:
        sock = _request(live.port, f"/api/stream/{run_id}", receive_buffer=4096)
        received = 0
        while received < 64 * 1024:
            data = sock.recv(4096)
            assert data, "the stream ended early"
            received += len(data)
        sock.close()
        left = time.perf_counter()
        while container.streams.count:  # read from here, so a blocked loop is seen too
            time.sleep(0.005)
        return time.perf_counter() - left

    released_after = await asyncio.wait_for(asyncio.to_thread(read_a_little_then_leave), 60)
    assert released_after < HEALTH_BOUND_SECONDS, f"released {released_after:.2f} s after"
    consumed = pulled[0]
    await asyncio.sleep(0.3)
    assert pulled[0] == consumed  # the position stopped advancing with the stream gone
    # What it pulled is what the socket buffers held (a few MB), far from the whole replay.
    assert consumed < EVENTS // 4, f"pulled {consumed} of {EVENTS} events for a departed viewer"

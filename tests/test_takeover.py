"""Issue 11, points 2, 4 and 5 in one process: several servers (apps) on one database and,
where the point is about sharing it, one Redis event log.

A server whose run is taken over here is not killed: its heartbeat is stopped and its model
stalls, which is what a paused or partitioned owner looks like to the others. Killing real
processes is `test_worker_processes`'s job.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.domain.events import Event
from symposia.domain.models import BotConfig, Run, RunStatus, utcnow
from symposia.errors import RateLimitedError
from symposia.orchestration.control import HANDOVER
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.sql_runs import SqlRunRepository
from symposia.storage.tables import RunRow
from tests.conftest import make_settings
from tests.helpers import wait_for_event
from tests.test_event_log_contract import REDIS_URL, _require_redis

HEARTBEAT, LEASE = 0.1, 0.6


@dataclass
class Servers:
    """Starts servers on one database (`log="redis"`: and one Redis event log)."""

    database_url: str
    scripted: ScriptedProvider
    running: list[Container] = field(default_factory=list)

    async def __call__(self, log: str = "memory", **overrides: Any) -> Container:
        options: dict[str, Any] = {
            "database_url": self.database_url,
            "run_heartbeat_seconds": HEARTBEAT,
            "run_lease_seconds": LEASE,
            "shutdown_grace_seconds": 0.2,
            **overrides,
        }
        if log == "redis":
            options.update(event_log="redis", redis_url=REDIS_URL)
        settings = make_settings(**options)
        providers = default_providers(settings)
        providers.register(self.scripted)
        container = container_of(create_app(settings, providers))
        await container.start()
        self.running.append(container)
        return container

    async def stop(self, container: Container) -> None:
        self.running.remove(container)
        await container.shutdown()


@pytest.fixture(params=["memory", "redis"])
async def log_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        await _require_redis()
    return str(request.param)


@pytest.fixture
async def servers(database_url: str, scripted: ScriptedProvider) -> AsyncIterator[Servers]:
    made = Servers(database_url, scripted)
    yield made
    for container in list(made.running):
        await made.stop(container)


async def _pause(container: Container) -> None:
    """The server stops renewing its leases, as a paused or partitioned one would."""
    await container.liveness.close()


async def _events(container: Container, run_id: str, timeout: float = 15) -> list[Event]:
    """The run's whole stream as `container` has it, once it has it (a server on the memory
    log has the stream only once it took the run over) and it ended."""

    async def drain() -> list[Event]:
        for _ in range(int(timeout / 0.02)):
            if await container.log.exists(run_id):
                break
            await asyncio.sleep(0.02)
        return [event async for event in container.log.subscribe(run_id)]

    return await asyncio.wait_for(drain(), timeout)


def _gap_free(events: list[Event]) -> None:
    """Every id from the first stands for one event, or for a `snapshot` of several."""
    for before, event in itertools.pairwise(events):
        first = event.data["first_id"] if event.type == "snapshot" else event.seq
        assert first == before.seq + 1, (before, event)


def _bots(stalling: str = "scripted/stall") -> list[BotConfig]:
    return [
        BotConfig("A", "scripted/count", "", max_tokens=4),
        BotConfig("B", stalling, "", max_tokens=50),
    ]


@pytest.fixture(autouse=True)
def _scripts(scripted: ScriptedProvider) -> None:
    scripted.add_script("stall", Script(chunks=["cut ", "short ", "here"], stall_after=2))
    scripted.add_script("slow", Script(chunks=[f"w{i} " for i in range(200)], delay=0.02))


async def test_a_paused_owners_run_is_taken_over_and_its_cut_turn_kept(
    servers: Servers, log_kind: str
) -> None:
    first = await servers(log_kind)
    run = await first.runs.create("t", _bots(), 3, owner="dev")
    cut_at = await wait_for_event(
        first, run.id, lambda e: e.type == "token" and e.data["delta"] == "short "
    )
    await _pause(first)
    second = await servers(log_kind)  # it looks for lapsed leases at start and every beat
    started = time.monotonic()
    events = await _events(second, run.id)
    took = time.monotonic() - started
    assert took < LEASE + 2

    stored = await second.run_repository.get(run.id)
    assert stored is not None
    assert stored.status is RunStatus.COMPLETED
    assert stored.takeovers == 1
    turns = [(m.turn, m.author, m.status.value, m.content) for m in stored.messages]
    if log_kind == "redis":  # the shared log had the cut turn's text
        assert turns[1] == (1, "B", "partial", "cut short ")
    else:  # it was only in the paused server's memory
        assert turns[1] == (1, "B", "partial", "")
    assert [t[:3] for t in turns] == [
        (0, "A", "complete"),
        (1, "B", "partial"),
        (2, "A", "complete"),
    ]

    _gap_free(events)
    kinds = [e.type for e in events]
    resumed = kinds.index("resumed")
    assert kinds[resumed - 2 : resumed + 2] == [
        "turn_complete",
        "interrupted",
        "resumed",
        "turn_start",
    ]
    assert events[resumed - 2].data["status"] == "partial"
    assert events[resumed - 1].data == {
        "reason": "the process generating the run stopped",
        "turn": 2,
    }
    assert events[resumed].data == {"turn": 2, "takeovers": 1}
    assert kinds[-2:] == ["run_status", "done"]
    if log_kind == "redis":  # one stream, numbered once: the ids the paused owner used stand
        assert events[0].seq == 1
        assert next(e for e in events if e.seq == cut_at.seq) == cut_at
    else:  # a new log, numbered after every id the lost one may have used
        assert events[0].type == "run_status"
        gap = [e for e in events if e.type == "snapshot" and not e.data["messages"]]
        snapshot = gap[0]
        assert snapshot.seq > cut_at.seq
        assert snapshot.data["first_id"] <= cut_at.seq


async def test_the_paused_owner_is_fenced_out_when_it_wakes(
    servers: Servers, scripted: ScriptedProvider
) -> None:
    """Its stalled model call ends (it is stopped): it must write nothing more."""
    first = await servers()
    run = await first.runs.create("t", _bots(), 2, owner="dev")
    await wait_for_event(first, run.id, lambda e: e.type == "token" and e.data["delta"] == "short ")
    await _pause(first)
    second = await servers()
    await _events(second, run.id)
    before = await second.run_repository.get(run.id)
    # The paused owner is told to stop: its cancellation path writes at its old epoch.
    task = first.runs.tasks.running[run.id]
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    after = await second.run_repository.get(run.id)
    assert before is not None
    assert after is not None
    assert after.status is RunStatus.COMPLETED  # not `cancelled` by the stale owner
    assert [m.content for m in after.messages] == [m.content for m in before.messages]


async def test_of_two_processes_taking_a_run_over_one_wins(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    dead = SqlRunRepository(sessions, "dead")
    run = Run(topic="t", bots=_bots(), max_turns=2, owner="dev")
    await dead.add(run)
    epoch = await dead.claim(run.id)
    async with sessions.begin() as session:
        await session.execute(update(RunRow).values(heartbeat_at=utcnow() - timedelta(seconds=60)))
    takers = [SqlRunRepository(sessions, f"taker{i}") for i in range(4)]
    expired = await takers[0].expired(30)
    assert expired == [(run.id, epoch)]
    results = await asyncio.gather(*(t.take_over(run.id, epoch, 30) for t in takers))
    assert sorted(results, key=lambda r: r is None) == [(epoch + 1, 1), None, None, None]
    assert await takers[0].expired(30) == []  # a fresh lease now
    await engine.dispose()


async def test_takeovers_are_capped(servers: Servers, log_kind: str) -> None:
    first = await servers(log_kind)
    run = await first.runs.create("t", _bots(), 3, owner="dev")
    await wait_for_event(first, run.id, lambda e: e.type == "token" and e.data["delta"] == "short ")
    await _pause(first)
    second = await servers(log_kind, run_max_takeovers=0)
    events = await _events(second, run.id)
    stored = await second.run_repository.get(run.id)
    assert stored is not None
    assert stored.status is RunStatus.INTERRUPTED
    assert stored.stop_reason == "taken over 0 times, the most allowed (RUN_MAX_TAKEOVERS)"
    assert [m.status.value for m in stored.messages] == ["complete", "partial"]
    assert [e.type for e in events][-4:] == ["turn_complete", "interrupted", "run_status", "done"]
    assert events[-1].data == {"status": "interrupted", "ended_by": "takeovers"}


async def test_a_stop_sent_to_another_server_takes_effect_within_a_second(
    servers: Servers, log_kind: str
) -> None:
    owner, other = await servers(log_kind), await servers(log_kind)
    run = await owner.runs.create("t", _bots("scripted/slow"), 4, owner="dev")
    await wait_for_event(owner, run.id, lambda e: e.type == "token")
    started = time.monotonic()
    stopped = await other.runs.stop(run.id, owner="dev")
    took = time.monotonic() - started
    assert stopped.status is RunStatus.CANCELLED
    assert stopped.stop_reason == "stopped by user"
    assert took < 1.5
    events = await _events(owner, run.id)
    assert events[-2].data == {
        "status": "cancelled",
        "reason": "stopped by user",
        "ended_by": "stop",
    }


async def test_a_stop_of_a_run_whose_owner_is_gone_ends_it_there(servers: Servers) -> None:
    owner = await servers()
    run = await owner.runs.create("t", _bots(), 3, owner="dev")
    await wait_for_event(owner, run.id, lambda e: e.type == "token" and e.data["delta"] == "short ")
    await _pause(owner)
    other = await servers(run_resume=True, run_lease_seconds=30, run_heartbeat_seconds=10)
    # Its lease lapses (0.6 s here), but the other server sweeps only every 10 s: the stop
    # must not wait for that.
    await asyncio.sleep(LEASE + 0.2)
    stopped = await other.runs.stop(run.id, owner="dev")
    assert stopped.status is RunStatus.CANCELLED
    assert [m.status.value for m in stopped.messages] == ["complete", "partial"]


async def test_the_running_runs_limit_holds_across_servers(servers: Servers) -> None:
    one = await servers(max_concurrent_runs_per_principal=1)
    two = await servers(max_concurrent_runs_per_principal=1)
    await one.runs.create("t", _bots("scripted/slow"), 4, owner="dev")
    with pytest.raises(RateLimitedError, match="1 runs are already going on"):
        await two.runs.create("t", _bots("scripted/slow"), 4, owner="dev")
    await two.runs.create("t", _bots("scripted/slow"), 4, owner="someone else")


async def test_a_leaving_server_hands_its_runs_over(servers: Servers) -> None:
    await _require_redis()
    leaving = await servers("redis")
    run = await leaving.runs.create("t", _bots("scripted/slow"), 3, owner="dev")
    await wait_for_event(leaving, run.id, lambda e: e.type == "token" and e.data["turn"] == 1)
    staying = await servers("redis")
    await servers.stop(leaving)  # the turn under way does not finish within 0.2 s: it is cut
    events = await _events(staying, run.id)
    stored = await staying.run_repository.get(run.id)
    assert stored is not None
    assert stored.status is RunStatus.COMPLETED
    assert [m.status.value for m in stored.messages] == ["complete", "partial", "complete"]
    _gap_free(events)
    kinds = [e.type for e in events]
    resumed = kinds.index("resumed")
    assert kinds[resumed - 2 : resumed + 1] == ["turn_complete", "interrupted", "resumed"]
    assert events[resumed - 1].data["reason"] == "handed over: the server is shutting down"
    text = "".join(e.data["delta"] for e in events if e.type == "token" and e.data["turn"] == 1)
    assert stored.messages[1].content == text


async def test_a_run_whose_task_is_gone_here_is_taken_up_again_here(servers: Servers) -> None:
    """Leases are renewed only for runs this process has a task for: a run released (or
    whose task died) without ending is taken over by the next sweep, this process's too."""
    only = await servers()
    run = await only.runs.create("t", _bots("scripted/slow"), 2, owner="dev")
    await wait_for_event(only, run.id, lambda e: e.type == "token" and e.data["turn"] == 1)
    task = only.runs.tasks.running[run.id]
    only.runs.tasks.control.stop_reasons[run.id] = HANDOVER
    task.cancel()
    events = await _events(only, run.id)
    kinds = [e.type for e in events]
    assert kinds[kinds.index("interrupted") + 1] == "resumed"
    stored = await only.run_repository.get(run.id)
    assert stored is not None
    assert stored.status is RunStatus.COMPLETED
    assert stored.takeovers == 1
    assert [m.status.value for m in stored.messages] == ["complete", "partial"]

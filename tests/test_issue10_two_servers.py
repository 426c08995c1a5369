"""Issue 10, point 10: a second server's start-up marked the first server's live run
`interrupted` (it later completed, with the wrong stop reason, and refused a stop).

Each server renews a heartbeat of its live runs; only a run whose heartbeat went stale
(its server died) is marked interrupted, at start-up or on a later beat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.domain.models import BotConfig, Run, RunStatus, utcnow
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.sql_runs import SqlRunRepository
from symposia.storage.tables import RunRow
from tests.conftest import make_settings
from tests.helpers import wait_done, wait_for_event

HEARTBEAT, STALE = 0.2, 1.5  # margins for a loaded machine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        run_heartbeat_seconds=HEARTBEAT,
        run_lease_seconds=STALE,
        run_resume=False,  # a run of a dead server is marked, not taken over (see test_takeover)
    )


async def _server(settings: Settings, scripted: ScriptedProvider) -> FastAPI:
    providers = default_providers(settings)
    providers.register(scripted)
    app = create_app(settings, providers)
    await container_of(app).start()
    return app


@pytest.fixture
async def second(
    settings: Settings, scripted: ScriptedProvider
) -> AsyncIterator[Callable[[], Awaitable[Container]]]:
    """Another server on the same database, started when the test asks."""
    apps: list[FastAPI] = []

    async def start() -> Container:
        apps.append(await _server(settings, scripted))
        return container_of(apps[-1])

    yield start
    for app in apps:
        await container_of(app).shutdown()


def _dead_run() -> Run:
    bots = [BotConfig("A", "scripted/echo", ""), BotConfig("B", "scripted/echo", "")]
    return Run(topic="t", bots=bots, max_turns=2, owner="dev")


async def test_a_second_server_leaves_the_first_servers_live_run_alone(
    client: httpx.AsyncClient,
    container: Container,
    scripted: ScriptedProvider,
    second: Callable[[], Awaitable[Container]],
) -> None:
    # The run outlives several stale periods, so only renewed heartbeats keep it alive.
    scripted.add_script("slow", Script(chunks=[f"w{i} " for i in range(20)], delay=0.1))
    bots = [{"name": "A", "model": "scripted/slow"}, {"name": "B", "model": "scripted/slow"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 2})
    run_id = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    other = await second()
    assert (await other.runs.get(run_id, owner="dev")).status is RunStatus.RUNNING
    events = await wait_done(container, run_id)
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    summary = (await client.get(f"/api/run/{run_id}")).json()
    assert summary["status"] == "completed"
    assert summary["stop_reason"] is None
    assert summary["turn_count"] == 2


async def test_a_run_with_a_stale_heartbeat_is_interrupted_at_start(
    settings: Settings, scripted: ScriptedProvider, second: Callable[[], Awaitable[Container]]
) -> None:
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    dead, alive = _dead_run(), _dead_run()
    elsewhere = SqlRunRepository(sessions, "another-server")
    for run in (dead, alive):
        await elsewhere.add(run)
        await elsewhere.set_status(run.id, RunStatus.RUNNING)
    async with sessions.begin() as session:
        long_ago = utcnow() - timedelta(seconds=STALE * 4)
        await session.execute(
            update(RunRow).where(RunRow.id == dead.id).values(heartbeat_at=long_ago)
        )
    await engine.dispose()
    started = await second()
    stopped = await started.run_repository.get(dead.id)
    assert stopped is not None
    assert stopped.status is RunStatus.INTERRUPTED
    still = await started.run_repository.get(alive.id)
    assert still is not None
    assert still.status is RunStatus.RUNNING  # its server may be alive: untouched


async def test_a_run_whose_server_stops_beating_is_interrupted_once_stale(
    settings: Settings, scripted: ScriptedProvider, second: Callable[[], Awaitable[Container]]
) -> None:
    server = await second()
    elsewhere = SqlRunRepository(session_factory(server.engine), "died-just-now")
    run = _dead_run()
    await elsewhere.add(run)
    await elsewhere.set_status(run.id, RunStatus.RUNNING)
    await asyncio.sleep(STALE / 2)
    got = await server.run_repository.get(run.id)
    assert got is not None
    assert got.status is RunStatus.RUNNING  # not stale yet
    async with asyncio.timeout(STALE * 10):
        while got.status is RunStatus.RUNNING:
            await asyncio.sleep(HEARTBEAT)
            got = await server.run_repository.get(run.id)
            assert got is not None
    assert got.status is RunStatus.INTERRUPTED


def test_the_stale_threshold_must_leave_room_for_heartbeats() -> None:
    from symposia.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="RUN_LEASE_SECONDS"):
        load_settings(_env_file=None, run_heartbeat_seconds=10, run_lease_seconds=15)

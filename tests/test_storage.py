"""The schema and its migrations, durability across restarts, and a database that is down."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from symposia.app import container_of, create_app
from symposia.domain.models import BotConfig, Message, Run, RunStatus
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.storage.db import create_engine, normalise_url, session_factory
from symposia.storage.migrate import alembic_config, current_revision, upgrade
from symposia.storage.sql_runs import SqlRunRepository
from symposia.storage.tables import Base
from tests.conftest import make_settings
from tests.fakes.databases import PostgresDatabases, pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresDatabases
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return pg_url(postgres.create())


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_migrations_from_empty_to_head_match_the_models(empty_database: str) -> None:
    engine = create_engine(empty_database)
    try:
        assert await current_revision(engine) is None
        await upgrade(engine)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert await current_revision(engine) == head
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert {"conversations", "messages", "runs", "run_bots", "run_bot_edits"} <= tables
            assert await connection.run_sync(_diff) == []  # no model change lacks a migration
        await upgrade(engine)  # idempotent
    finally:
        await engine.dispose()


def test_urls_get_async_drivers() -> None:
    assert normalise_url(None) == "sqlite+aiosqlite:///./symposia.db"
    assert normalise_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert normalise_url("postgresql://u@h:5432/db") == "postgresql+asyncpg://u@h:5432/db"
    assert normalise_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


async def test_runs_survive_a_restart_and_unfinished_ones_become_interrupted(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)
    repository = SqlRunRepository(session_factory(engine))
    run = Run(
        topic="t",
        bots=[BotConfig("A", "scripted/echo", ""), BotConfig("B", "scripted/echo", "")],
        max_turns=3,
        owner="dev",  # the DEV_MODE principal the API below runs as
    )
    await repository.add(run)
    await repository.set_status(run.id, RunStatus.RUNNING)
    await repository.add_message(run.id, Message("assistant", "A", "said", bot_index=0, turn=0))
    await repository.update_bot(run.id, 1, BotConfig("B", "scripted/count", "new", 1.0, 9))
    await engine.dispose()

    # The "process" above is gone; its lease lapses after RUN_LEASE_SECONDS, and the run
    # is marked (RUN_RESUME=false; taking it over is tested in test_takeover).
    settings = make_settings(
        database_url=database_url,
        run_heartbeat_seconds=0.05,
        run_lease_seconds=0.2,
        run_resume=False,
    )
    await asyncio.sleep(0.3)
    app = create_app(settings, ProviderRegistry())
    container = container_of(app)
    await container.start()
    try:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://symposia.test"
        )
        async with client:
            summary = (await client.get(f"/api/run/{run.id}")).json()
            assert summary["status"] == "interrupted"
            assert summary["turn_count"] == 1
            assert summary["bots"][1]["model"] == "scripted/count"
            export = (await client.get(f"/api/export/{run.id}.json")).json()
            assert [m["content"] for m in export["messages"]] == ["said"]
            listed = (await client.get("/api/runs")).json()["items"]
            assert [(r["id"], r["turn_count"]) for r in listed] == [(run.id, 1)]
            frames = (await client.get(f"/api/stream/{run.id}")).text
            assert "event: done" in frames
            assert '"status":"interrupted"' in frames
        stored = await container.run_repository.get(run.id)
        assert stored is not None
        assert stored.edits[0].bot == 1
        assert stored.edits[0].changes["model"] == "scripted/count"
    finally:
        await container.shutdown()


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:1/nowhere", "sqlite:////nonexistent-dir/symposia.db"]
)
async def test_an_unreachable_database_is_503_with_a_clear_message(url: str) -> None:
    app = create_app(make_settings(database_url=url), ProviderRegistry([ScriptedProvider()]))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://symposia.test"
    )
    try:
        async with client:
            health = await client.get("/health")
            assert health.status_code == 503
            assert health.json()["database"] == "unavailable"
            for method, path in [
                ("GET", "/api/conversations"),
                ("GET", "/api/runs"),
                ("POST", "/api/conversations"),
            ]:
                response = await client.request(method, path, json={} if method == "POST" else None)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["code"] == "database_unavailable"
    finally:
        await container_of(app).shutdown()
        await _failed_connects_stopped()


async def _failed_connects_stopped() -> None:
    """A connect that failed stops its aiosqlite thread with a last item answered to this
    loop: let it land while the loop still runs, not after the test closed it."""
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            for _ in range(100):
                if not thread.is_alive():
                    break
                await asyncio.sleep(0.01)

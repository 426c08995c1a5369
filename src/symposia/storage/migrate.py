"""Bring the schema to the latest migration: at start-up, and by `symposia db upgrade`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from symposia.settings import Settings
from symposia.storage.db import DatabaseTimeouts, create_engine

SCRIPT_LOCATION = "symposia.storage:migrations"
# The PostgreSQL advisory lock every process of a deployment takes to migrate ("SYMP").
MIGRATION_LOCK_ID = 0x53594D50


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate in one transaction. On PostgreSQL, workers started together on a fresh
    database would each create the tables and all but one fail; an advisory lock held to
    the commit makes them take turns, and the later ones find the schema already at head."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:id)")
            await connection.execute(lock, {"id": MIGRATION_LOCK_ID})
        await connection.run_sync(_upgrade, revision)


async def migrate(settings: Settings) -> None:
    """Apply the migrations to DATABASE_URL on an engine of their own: connecting is
    bounded as for requests, statements are not (DDL on a big table, or the advisory lock
    while another process migrates, may rightly take longer than any request)."""
    engine = create_engine(settings.database_url, DatabaseTimeouts.of(settings, statement=False))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)

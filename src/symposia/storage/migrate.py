"""Bring the schema to the latest migration: at start-up, and by `symposia db upgrade`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from symposia.settings import Settings
from symposia.storage.db import DatabaseTimeouts, create_engine

if TYPE_CHECKING:  # alembic is loaded only when there is something to migrate
    from alembic.config import Config

SCRIPT_LOCATION = "symposia.storage:migrations"
# The PostgreSQL advisory lock every process of a deployment takes to migrate ("SYMP").
MIGRATION_LOCK_ID = 0x53594D50


VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r'^(down_revision|revision) = (?:"([^"]+)"|None)$', re.MULTILINE)


def head_revision() -> str | None:
    """The one head of the migration files, read without alembic (None when they do not
    read as a single line of `revision = "..."` / `down_revision = "..."`: alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("[0-9]*.py"):
        fields = {name: value for name, value in _REVISION.findall(path.read_text("utf-8"))}
        if "revision" not in fields or not fields["revision"]:
            return None
        revisions.add(fields["revision"])
        if fields.get("down_revision"):
            parents.add(fields["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database is already at the migration files' head: the usual start-up,
    which then needs neither alembic (a third of a second to import) nor its scripts."""
    head = head_revision()
    if head is None:
        return False
    try:
        async with engine.connect() as connection:
            found: object = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError:  # no table yet: a new database
        return False
    return bool(found == head)


def alembic_config(url: str = "") -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate in one transaction. On PostgreSQL, workers started together on a fresh
    database would each create the tables and all but one fail; an advisory lock held to
    the commit makes them take turns, and the later ones find the schema already at head."""
    if revision == "head" and await at_head(engine):
        return
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

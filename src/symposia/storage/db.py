"""The database engine: a SQLite file by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///./symposia.db"
# How long a write waits for SQLite's one writer lock: as long as a request waits for a
# pooled connection, since both mean the same (busy, not down).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str | None) -> str:
    """Accept the URLs people write (`postgres://`, `postgresql://`, `sqlite:///x.db`) and
    pick the async driver for them."""
    if not url:
        return DEFAULT_URL
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str | None, **kwargs: Any) -> AsyncEngine:
    """The engine for `url`. SQL parameters hold message text, prompts and titles: an
    error's message never shows them (`hide_parameters`), so no traceback logs them."""
    url = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(connection: Any, record: Any) -> None:
            cursor = connection.cursor()
            # WAL: readers never block the writer; NORMAL sync is durable across a process
            # crash, which is what "never lose a transcript" asks of a single machine.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)

"""The database engine: a SQLite file by default, PostgreSQL when DATABASE_URL says so.

A PostgreSQL that stops answering (a lost route, a stalled server) must cost a request a
few seconds, not a minute: connecting, each statement (the pool's pre-ping included)
and the wait for a pooled connection are bounded (`DatabaseTimeouts`). A timed-out
statement raises `TimeoutError`, which `storage.failures` reads as an outage (503).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///./symposia.db"
# How long a write waits for SQLite's one writer lock: as long as a request waits for a
# pooled connection, since both mean the same (busy, not down).
SQLITE_BUSY_TIMEOUT_MS = 30_000

if TYPE_CHECKING:
    from symposia.settings import Settings


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """Seconds PostgreSQL may take: to open a connection, to answer one statement (None:
    no limit, for migrations), and to free a pooled connection for a request."""

    connect: float = 2.0
    statement: float | None = 3.0
    pool: float = 5.0

    @classmethod
    def of(cls, settings: Settings, statement: bool = True) -> DatabaseTimeouts:
        """The timeouts the settings give; `statement=False` for a migration, whose DDL
        and advisory lock may rightly take longer than any request."""
        return cls(
            settings.database_connect_timeout_seconds,
            settings.database_statement_timeout_seconds if statement else None,
            settings.database_pool_timeout_seconds,
        )


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


def create_engine(
    url: str | None, timeouts: DatabaseTimeouts | None = None, **kwargs: Any
) -> AsyncEngine:
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
    timeouts = timeouts or DatabaseTimeouts()
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_timeout", timeouts.pool)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("timeout", timeouts.connect)
    connect_args.setdefault("command_timeout", timeouts.statement)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)

"""What a database failure means, told from the driver's exceptions, and how to log one.

Only a failure to reach the database is an outage (503, "try again"): a refused or
dropped connection, an exhausted pool, a server that is starting or full. Anything else
the database refuses is a bug or bad input, and must not invite retries.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from sqlalchemy import exc as sa

DRIVER_MODULES = ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy")


def asyncpg_connect_failures() -> tuple[type[Exception], ...]:
    """What asyncpg raises itself (not wrapped by SQLAlchemy) when it cannot open a
    connection; none while asyncpg is not loaded (on SQLite it never is: it weighs 3 MB),
    since then nothing could have raised them."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return ()
    return (
        asyncpg.PostgresConnectionError,  # SQLSTATE class 08
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.InvalidCatalogNameError,  # the database does not exist
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidPasswordError,
        asyncpg.InterfaceError,  # e.g. the connection was closed under us
    )


def _postgres_error() -> tuple[type[Exception], ...]:
    asyncpg = sys.modules.get("asyncpg")
    return () if asyncpg is None else (asyncpg.PostgresError,)


def _raised_by_driver(exc: BaseException) -> bool:
    """Whether database-driver code is on `exc`'s traceback (not, say, an HTTP client's)."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").split(".")[0] in DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` says the database is working but taken: no pooled connection came
    free in time, or SQLite's single writer lock stayed held past its busy timeout."""
    if isinstance(exc, sa.TimeoutError):
        return True
    orig = exc.orig if isinstance(exc, sa.DBAPIError) else exc
    return isinstance(orig, sqlite3.OperationalError) and (
        getattr(orig, "sqlite_errorcode", None) in SQLITE_BUSY_CODES
    )


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (rather than refused a query)."""
    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa.OperationalError | sa.InterfaceError):
            return True
        return exc.orig is not None and is_connection_failure(exc.orig)
    if isinstance(exc, sa.DisconnectionError | sa.TimeoutError):
        return True
    if isinstance(exc, asyncpg_connect_failures()):
        return True
    # The OSError of a refused or unresolvable connection comes straight from asyncpg's connect.
    return isinstance(exc, OSError) and _raised_by_driver(exc)


def summary(exc: BaseException) -> str:
    """`exc` named for a log line without its message: a driver's message may quote a value
    (PostgreSQL's "invalid input syntax ...: "<text>""), and values are user text."""
    names = [type(exc).__name__]
    orig = getattr(exc, "orig", None)
    if orig is not None:
        names.append(type(orig).__name__)
    code = getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None)
    return " / ".join(names) + (f" [{code}]" if code else "")


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """Log a task's failure: a database error by its `summary` only (its traceback would
    carry the driver's message), anything else with its traceback."""
    if isinstance(exc, (sa.SQLAlchemyError, *_postgres_error())) or _raised_by_driver(exc):
        logger.error("%s: %s", what, summary(exc))
    else:
        logger.error(what, exc_info=exc)

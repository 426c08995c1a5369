"""Repository calls that a cancelled caller cannot cut in half, on SQLite.

A run is stopped, a reply cut and a request abandoned by cancelling the task that is
doing the work, wherever it is. Cancelled inside a SQLite transaction (between the
driver's answer and the task resuming), SQLAlchemy's asyncio layer can drop the
connection with its transaction still open in aiosqlite's thread: the file's one write
lock then stays held, and every later write waits out the 30 s busy timeout and fails
(`DELETE /api/run/{id}` of a live run answered 503 that way). So on SQLite a repository
call runs to its end (commit or rollback) in a task of its own, and the cancel reaches
the caller after it. Writes on SQLite are local and bounded by the busy timeout, so the
wait is short. PostgreSQL is left as it was: a cancelled asyncpg connection is
terminated and the server rolls its transaction back, and a stop during an outage must
not wait for a statement timeout.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
C = TypeVar("C", bound=type)


async def finish_before_cancel(call: Awaitable[T]) -> T:
    """`await call`, except that a cancel waits for `call` to end, then is raised."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                continue
        if not task.cancelled():
            task.exception()  # seen: what the cancelled caller gets is the cancel
        raise


def _on_sqlite(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """By the engine's dialect (no URL parsing per call; a stand-in factory: no)."""
    bind = getattr(sessions, "kw", {}).get("bind")
    return bind is not None and bind.dialect.name == "sqlite"


def finishing(
    method: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """One repository method made to finish before a cancel reaches its caller, on SQLite
    (for a class whose other methods open no transaction of their own)."""

    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _on_sqlite(self._sessions):
            return await method(self, *args, **kwargs)
        return await finish_before_cancel(method(self, *args, **kwargs))

    return call


def cancel_safe(cls: C) -> C:
    """Make every public coroutine method of a repository (which keeps its session
    factory as `_sessions`) finish before a cancel reaches its caller, on SQLite."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, finishing(member))
    return cls

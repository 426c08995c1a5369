"""Stored `/v1/responses` answers are written by group commit: concurrent writes share
transactions, each is in the database when its `add` returns, and a failed transaction
fails the writes it held (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.sql_responses import SqlResponseRepository


class CountingSessions:
    """The repository's session factory, counting the transactions it begins."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.transactions = 0
        self.fail = False

    def __call__(self) -> Any:
        return self.sessions()

    def begin(self) -> Any:
        self.transactions += 1
        if self.fail:
            raise ConnectionError("the database went away")
        return self.sessions.begin()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[SqlResponseRepository, CountingSessions]]:
    engine = create_engine(database_url)
    await upgrade(engine)
    counting = CountingSessions(session_factory(engine))
    yield SqlResponseRepository(counting), counting  # type: ignore[arg-type]
    await engine.dispose()


async def test_concurrent_writes_share_transactions_and_are_readable_at_once(
    store: tuple[SqlResponseRepository, CountingSessions],
) -> None:
    repo, counting = store

    async def write_then_read(i: int) -> None:
        await repo.add(f"resp_{i}", "me", None, [{"role": "user", "content": str(i)}], {"n": i})
        stored = await repo.get(f"resp_{i}")  # written before `add` returned
        assert stored is not None
        assert stored.body == {"n": i}

    await asyncio.gather(*(write_then_read(i) for i in range(40)))
    assert counting.transactions < 10  # 40 writes; one transaction each would be 40


async def test_a_failed_transaction_fails_its_writes(
    store: tuple[SqlResponseRepository, CountingSessions],
) -> None:
    repo, counting = store
    counting.fail = True
    results = await asyncio.gather(
        *(repo.add(f"resp_{i}", None, None, [], {}) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    counting.fail = False
    await repo.add("resp_after", None, None, [], {})  # the writer goes on
    assert await repo.get("resp_after") is not None

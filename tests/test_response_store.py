"""Stored `/v1/responses` answers are written by group commit: concurrent writes share
transactions, each is in the database when its `add` returns, and a failed transaction
fails the writes it held (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
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
    run = uuid.uuid4().hex

    async def write_then_read(i: int) -> None:
        response_id = f"resp_{run}_{i}"
        await repo.add(response_id, "me", None, [{"role": "user", "content": str(i)}], {"n": i})
        stored = await repo.get(response_id)  # written before `add` returned
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
        *(repo.add(f"resp_{uuid.uuid4().hex}", None, None, [], {}) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    counting.fail = False
    after = f"resp_{uuid.uuid4().hex}"
    await repo.add(after, None, None, [], {})  # the writer goes on
    assert await repo.get(after) is not None


async def test_a_chain_is_read_oldest_first_and_stops_where_it_was_cut(
    store: tuple[SqlResponseRepository, CountingSessions],
) -> None:
    repo, _ = store
    ids = [f"resp_{uuid.uuid4().hex}" for _ in range(5)]  # the database outlives a test
    previous = None
    for i, response_id in enumerate(ids):
        await repo.add(response_id, "me", previous, [], {"n": i})
        previous = response_id
    assert [r.id for r in await repo.chain(ids[4])] == ids
    assert [r.id for r in await repo.chain(ids[2])] == ids[:3]
    await repo.delete(ids[1])  # a forgotten response cuts the chain there
    assert [r.id for r in await repo.chain(ids[4])] == ids[2:]
    assert await repo.chain("resp_missing") == []

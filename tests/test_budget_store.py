"""Budget reservations straight on the store, on SQLite and PostgreSQL: many at once
admit no more than the budget, a lapsed lease is released, a new period starts from
zero, and a settlement after a sweep does not release twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import select

from symposia.governance.budgets import BudgetStore, Refused, Settlement
from symposia.governance.key_store import KeyLimitStore
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.tables import KeyLimitRow, KeyReservationRow

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@contextlib.asynccontextmanager
async def _stores(
    database_url: str, lease: float = 30.0
) -> AsyncIterator[tuple[BudgetStore, KeyLimitStore]]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        yield BudgetStore(sessions, "holder-a", lease), KeyLimitStore(sessions)
    finally:
        await engine.dispose()


async def _row(store: BudgetStore, key_id: str) -> KeyLimitRow:
    async with store._sessions() as session:
        row = await session.get(KeyLimitRow, key_id)
        assert row is not None
        return row


async def test_many_reservations_at_once_never_pass_the_budget(database_url: str) -> None:
    async with _stores(database_url) as (budgets, keys):
        await keys.set("k1", {"max_budget_nanos": 1000, "budget_period": "day"})
        found = await asyncio.gather(*(budgets.reserve("k1", 70, "day", NOW) for _ in range(40)))
        admitted = [f for f in found if isinstance(f, str)]
        assert len(admitted) == 1000 // 70  # 14: exactly what fits, whatever the interleaving
        refused = [f for f in found if isinstance(f, Refused)]
        assert refused[0].remaining_nanos < 70
        row = await _row(budgets, "k1")
        assert row.reserved_nanos == 14 * 70
        assert row.spent_nanos == 0


async def test_a_lapsed_lease_is_released_once(database_url: str) -> None:
    async with _stores(database_url, lease=0.2) as (budgets, keys):
        await keys.set("k2", {"max_budget_nanos": 1000})
        first = await budgets.reserve("k2", 600, None, NOW)
        assert isinstance(first, str)
        assert isinstance(await budgets.reserve("k2", 600, None, NOW), Refused)
        await asyncio.sleep(0.3)
        assert await budgets.sweep() == 1
        assert (await _row(budgets, "k2")).reserved_nanos == 0
        # The call settles late (its process was only slow): charged, not released again.
        async with budgets._sessions.begin() as session:
            await BudgetStore.settle(session, [Settlement("k2", first, 100, None, NOW)])
        row = await _row(budgets, "k2")
        assert (row.reserved_nanos, row.spent_nanos) == (0, 100)
        async with budgets._sessions() as session:
            assert list(await session.scalars(select(KeyReservationRow.id))) == []


async def test_renewed_leases_are_kept_and_a_new_period_starts_from_zero(
    database_url: str,
) -> None:
    async with _stores(database_url, lease=0.5) as (budgets, keys):
        await keys.set("k3", {"max_budget_nanos": 1000, "budget_period": "day"})
        held = await budgets.reserve("k3", 900, "day", NOW)
        assert isinstance(held, str)
        for _ in range(3):
            await asyncio.sleep(0.25)
            assert await budgets.renew() == 1
            assert await budgets.sweep() == 0
        async with budgets._sessions.begin() as session:
            await BudgetStore.settle(session, [Settlement("k3", held, 900, "day", NOW)])
        assert isinstance(await budgets.reserve("k3", 200, "day", NOW), Refused)
        tomorrow = datetime(2026, 12, 8, 0, 0, 1, tzinfo=UTC)
        assert isinstance(await budgets.reserve("k3", 200, "day", tomorrow), str)
        row = await _row(budgets, "k3")
        assert (row.spent_nanos, row.reserved_nanos) == (0, 200)

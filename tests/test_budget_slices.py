"""Budget slices (`governance.slices`): two processes' books against one database, on
SQLite and PostgreSQL. Calls within a slice never touch the database; a call that fits
the key's true remainder is not refused because another process holds a slice (it
waits for that slice to go idle); one that does not fit is refused; a lapsed slice is
charged as a `lost` ledger row, so the ledger still sums to the spend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import func, select

from symposia.governance.budgets import BudgetStore, Refused, Settlement
from symposia.governance.key_store import KeyLimitStore
from symposia.governance.ledger import UsageEntry, UsageLedger
from symposia.governance.slices import BudgetBook
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.tables import KeyLimitRow, KeyReservationRow, UsageRow

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


class _Process:
    """What one worker holds: its store (its holder id), ledger and book."""

    def __init__(self, sessions: object, holder: str, lease: float) -> None:
        self.store = BudgetStore(sessions, holder, lease)  # type: ignore[arg-type]
        self.ledger = UsageLedger(sessions, self.store)  # type: ignore[arg-type]
        self.book = BudgetBook(self.ledger, idle_seconds=0.2, wait_seconds=3.0)
        self.grows = 0
        grow = self.ledger.grow

        async def counted(*args: object) -> object:
            self.grows += 1
            return await grow(*args)  # type: ignore[arg-type]

        self.ledger.grow = counted  # type: ignore[method-assign]

    async def settle(self, key_id: str, slice_id: str, worst: int, actual: int) -> None:
        returned = self.book.settle(key_id, slice_id, worst, actual)
        self.ledger.add(UsageEntry(None, Settlement(key_id, slice_id, actual, None, NOW, returned)))
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _two(
    database_url: str, lease: float = 30.0
) -> AsyncIterator[tuple[_Process, _Process, KeyLimitStore]]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        yield (
            _Process(sessions, "proc-a", lease),
            _Process(sessions, "proc-b", lease),
            (KeyLimitStore(sessions)),
        )
    finally:
        await engine.dispose()


async def _counters(process: _Process, key_id: str) -> tuple[int, int, int]:
    """(spent, reserved, slices held) once the ledger is written."""
    await process.ledger.flush()
    async with process.store._sessions() as session:
        row = await session.get(KeyLimitRow, key_id, populate_existing=True)
        held = await session.scalar(
            select(func.count())
            .select_from(KeyReservationRow)
            .where(KeyReservationRow.key_id == key_id)
        )
    assert row is not None
    return row.spent_nanos, row.reserved_nanos, int(held or 0)


async def test_calls_within_a_slice_do_not_touch_the_database(database_url: str) -> None:
    async with _two(database_url) as (a, _, keys):
        await keys.set("s1", {"max_budget_nanos": 100_000})
        taken = [await a.book.take("s1", 100, None, NOW) for _ in range(5)]
        assert all(isinstance(t, str) for t in taken)
        assert a.grows == 1  # one transaction for the slice, none for the calls after it
        for slice_id in taken:
            assert isinstance(slice_id, str)
            await a.settle("s1", slice_id, 100, 40)
        a.book.give_back_idle()
        assert await _counters(a, "s1") == (200, 0, 0)


async def test_a_call_that_fits_the_true_remainder_waits_for_an_idle_slice(
    database_url: str,
) -> None:
    async with _two(database_url) as (a, b, keys):
        await keys.set("s2", {"max_budget_nanos": 1000})
        held = await a.book.take("s2", 100, None, NOW)
        assert isinstance(held, str)
        spent, reserved, _ = await _counters(a, "s2")
        assert reserved > 100  # a's slice holds headroom past its call
        # 1000 - 50 spent leaves 950: b's 600 fits the true remainder, not the free
        # budget while a's slice is held.
        assert 1000 - spent - reserved < 600
        started = asyncio.get_running_loop().time()
        asking = asyncio.create_task(b.book.take("s2", 600, None, NOW))
        await asyncio.sleep(0.3)
        assert not asking.done()  # waiting, not refused, while a's call is open
        await a.settle("s2", held, 100, 50)  # a goes idle: its slice goes back
        found = await asking
        assert isinstance(found, str), found
        assert asyncio.get_running_loop().time() - started < 3.0
        await b.settle("s2", found, 600, 600)
        b.book.give_back_idle()
        a.book.give_back_idle()
        assert await _counters(b, "s2") == (650, 0, 0)


async def test_a_call_that_does_not_fit_is_refused(database_url: str) -> None:
    async with _two(database_url) as (a, b, keys):
        await keys.set("s3", {"max_budget_nanos": 1000})
        held = await a.book.take("s3", 300, None, NOW)
        assert isinstance(held, str)
        started = asyncio.get_running_loop().time()
        found = await a.book.take("s3", 800, None, NOW)  # 1000 - 300 open: never fits
        assert isinstance(found, Refused)
        assert found.remaining_nanos == 700  # the free budget and its own slice's unused
        assert asyncio.get_running_loop().time() - started < 1.0  # no other slice: at once
        # Another process cannot tell a's open calls from its headroom: it waits for a
        # to go idle, and is refused when a stays busy.
        found = await b.book.take("s3", 800, None, NOW)
        assert isinstance(found, Refused)
        assert asyncio.get_running_loop().time() - started >= b.book.wait_seconds
        await a.settle("s3", held, 300, 300)
        a.book.give_back_idle()
        assert await _counters(a, "s3") == (300, 0, 0)


async def test_a_lapsed_slice_is_charged_as_a_lost_ledger_row(database_url: str) -> None:
    async with _two(database_url, lease=0.2) as (a, b, keys):
        await keys.set("s4", {"max_budget_nanos": 1000})
        held = await a.book.take("s4", 100, None, NOW)
        assert isinstance(held, str)
        _, reserved, _ = await _counters(a, "s4")
        await asyncio.sleep(0.3)  # a is killed: its lease is not renewed
        assert await b.store.sweep() == 1
        spent, left, slices = await _counters(b, "s4")
        assert (spent, left, slices) == (reserved, 0, 0)
        async with b.store._sessions() as session:
            rows = list(await session.execute(select(UsageRow.status, UsageRow.cost_nanos)))
        assert [tuple(r) for r in rows] == [("lost", reserved)]


async def test_a_process_whose_slice_lapsed_stops_admitting_against_it(
    database_url: str,
) -> None:
    """Stalled past its lease, a process finds at its next renewal that its slice was
    charged: it grows a new one against what is left, so it never admits past the
    budget."""
    async with _two(database_url, lease=0.2) as (a, b, keys):
        await keys.set("s5", {"max_budget_nanos": 1000})
        held = await a.book.take("s5", 100, None, NOW)
        assert isinstance(held, str)
        await asyncio.sleep(0.3)
        assert await b.store.sweep() == 1  # a's slice (500) is spent as lost
        await a.store.renew()
        a.book.keep_only(a.store.held)
        found = await a.book.take("s5", 100, None, NOW)
        assert isinstance(found, str)
        assert found != held  # a new slice, from the database
        spent, reserved, _ = await _counters(a, "s5")
        assert spent + reserved <= 1000


async def test_a_steady_crowd_grows_its_slice_a_few_times_not_per_call(
    database_url: str,
) -> None:
    """50 calls at once, again and again: the calls waiting for a growth count in its
    headroom, so the slice soon holds all of them and stays (once it only counted the
    calls already in, never passed the first few, and grew in nearly every round)."""
    async with _two(database_url) as (a, _, keys):
        await keys.set("s9", {"max_budget_nanos": 10**12})

        async def client() -> None:
            for _ in range(10):
                slice_id = await a.book.take("s9", 100, None, NOW)
                assert isinstance(slice_id, str), slice_id
                await a.settle("s9", slice_id, 100, 40)

        await asyncio.gather(*(client() for _ in range(50)))
        assert a.grows <= 10, a.grows
        a.book.give_back_idle()
        assert await _counters(a, "s9") == (500 * 40, 0, 0)

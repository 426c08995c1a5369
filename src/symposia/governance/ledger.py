"""The usage ledger: a row per provider call, written by group commit with the call's
budget settlement, and the budget reservations and slices (`governance.slices`) of the
calls starting.

`add` only queues (the hot path waits for nothing); `reserve` waits for its transaction.
One writer task per process takes everything queued: settles the finished calls (which
frees budget), inserts their rows, then makes the new reservations (each its own
conditional UPDATE, so the budget holds whatever the batch), all in one transaction, and
takes what arrived meanwhile in the next (as stored responses are written). One writer
means one commit for many calls and no two transactions of this process contending for
SQLite's write lock. A failed write fails the reservations waiting on it (their requests
are refused with the error) and is tried again with backoff for the rows; `flush` waits
until what was queued is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from symposia.governance.budgets import BudgetStore, Grown, Refused, Settlement
from symposia.governance.usage_rows import LEDGER
from symposia.governance.usage_rows import row_of as row_of  # its writers import it here
from symposia.storage.failures import summary

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.05, 0.2, 1.0, 2.0, 5.0, 10.0, 30.0)
# Rows and settlements wait this long for others to share their transaction (no call
# waits for them; a reservation or a slice's growth cuts the wait, as does a flush).
LINGER_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class ReserveOp:
    """A reservation to make in the next transaction; `done` gets its outcome."""

    key_id: str
    amount: int
    period: str | None
    at: datetime
    done: asyncio.Future[str | Refused]


@dataclass(frozen=True, slots=True)
class GrowOp:
    """A slice to grow in the next transaction (`BudgetStore.grow_in`)."""

    key_id: str
    slice_id: str | None
    need: int
    cap: int
    period: str | None
    at: datetime
    done: asyncio.Future[Grown | Refused]


@dataclass(frozen=True, slots=True)
class GiveBack:
    """A slice its idle holder gives back (after the settlements queued before it)."""

    slice_id: str


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One provider call's row (the `usage_ledger` columns; none for a call that never
    started), and what it settles."""

    row: dict[str, Any] | None
    settlement: Settlement | None


class UsageLedger:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], budgets: BudgetStore | None = None
    ) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]
        self._budgets = budgets
        self._pending: list[UsageEntry | ReserveOp | GrowOp | GiveBack] = []
        self._before_flush: list[Callable[[], None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._reserving = asyncio.Event()  # a reservation arrived during a pause
        self.linger_seconds = LINGER_SECONDS

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database the ledger lives in (its reports read it)."""
        return self._sessions

    def add(self, entry: UsageEntry) -> None:
        """Queue a call's row; written soon, with the others queued meanwhile."""
        self._queue(entry)

    async def reserve(
        self, key_id: str, amount: int, period: str | None, at: datetime
    ) -> str | Refused:
        """A reservation made in the next group commit (`BudgetStore.reserve_in`)."""
        done: asyncio.Future[str | Refused] = asyncio.get_running_loop().create_future()
        self._queue(ReserveOp(key_id, amount, period, at, done))
        self._reserving.set()
        return await done

    async def grow(
        self,
        key_id: str,
        slice_id: str | None,
        need: int,
        cap: int,
        period: str | None,
        at: datetime,
    ) -> Grown | Refused:
        """A slice grown in the next group commit (`BudgetStore.grow_in`)."""
        done: asyncio.Future[Grown | Refused] = asyncio.get_running_loop().create_future()
        self._queue(GrowOp(key_id, slice_id, need, cap, period, at, done))
        self._reserving.set()
        return await done

    def give_back(self, slice_id: str) -> None:
        """Queue a whole slice's release, after the settlements queued before it."""
        self._queue(GiveBack(slice_id))

    def before_flush(self, callback: Callable[[], None]) -> None:
        """`callback` runs first in every `flush` (the slices give back what is idle)."""
        self._before_flush.append(callback)

    def _queue(self, item: UsageEntry | ReserveOp | GrowOp | GiveBack) -> None:
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._start()

    def _start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write(), name="usage-ledger-writer"
        )

    async def flush(self) -> None:
        """Wait until every row queued so far is written (or given up on)."""
        for callback in self._before_flush:
            callback()
        self._reserving.set()  # no lingering: this waits
        while True:
            writer = self._writer
            if writer is None or writer.done():
                if not self._pending:
                    return
                self._start()
                continue
            with contextlib.suppress(Exception):  # its failures are logged by itself
                await asyncio.shield(writer)

    async def _write(self) -> None:
        failures = 0
        while self._pending:
            await self._linger()
            batch, self._pending = self._pending, []
            entries = [item for item in batch if isinstance(item, UsageEntry | GiveBack)]
            reserving = [item for item in batch if isinstance(item, ReserveOp | GrowOp)]
            try:
                await self._together(entries, reserving)
                failures = 0
            except Exception as exc:
                failures += 1
                if failures > len(RETRY_DELAYS):
                    logger.error(
                        "usage ledger: %d rows not written after %d tries: %s",
                        len(entries),
                        failures,
                        summary(exc),
                    )
                    failures = 0
                    continue
                logger.warning("usage ledger: write failed, trying again: %s", summary(exc))
                self._pending[:0] = entries
                await self._pause(RETRY_DELAYS[failures - 1])

    async def _linger(self) -> None:
        """Let more rows join the transaction, unless a call waits on it: one commit
        per many calls is what the ledger costs a call."""
        self._reserving.clear()
        if not self.linger_seconds or any(
            isinstance(item, ReserveOp | GrowOp) for item in self._pending
        ):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reserving.wait(), self.linger_seconds)

    async def _pause(self, seconds: float) -> None:
        """Wait before trying the rows again, unless a reservation arrives: it is tried
        at once (and fails at once if the database is still down), never held."""
        self._reserving.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reserving.wait(), seconds)

    async def _together(
        self, entries: list[UsageEntry | GiveBack], reserving: list[ReserveOp | GrowOp]
    ) -> None:
        """Settlements, rows, slices given back, then reservations and slices grown, in
        one transaction (settled first: they free budget). If it fails, the reservations
        fail with its error and it raises (the entries are tried again)."""
        budgets = self._budgets
        by_key: dict[str, list[ReserveOp]] = {}
        grows: list[GrowOp] = []
        for op in reserving:
            if isinstance(op, GrowOp):
                grows.append(op)
            else:
                by_key.setdefault(op.key_id, []).append(op)
        outcomes: list[tuple[ReserveOp, str | Refused]] = []
        grown: list[tuple[GrowOp, Grown | Refused]] = []
        try:
            # A connection, not a session: the statements are Core ones, and the ORM
            # session's bookkeeping per statement is CPU for nothing.
            async with self._engine.begin() as session:
                await self._settle_and_insert(
                    session, [e for e in entries if isinstance(e, UsageEntry)]
                )
                await BudgetStore.give_back_in(
                    session, [e.slice_id for e in entries if isinstance(e, GiveBack)]
                )
                for grow in grows:
                    assert budgets is not None
                    grown.append(
                        (
                            grow,
                            await budgets.grow_in(
                                session,
                                grow.key_id,
                                grow.slice_id,
                                grow.need,
                                grow.cap,
                                grow.period,
                                grow.at,
                            ),
                        )
                    )
                for key_id, ops in by_key.items():
                    assert budgets is not None
                    found = await budgets.reserve_in(
                        session,
                        key_id,
                        [op.amount for op in ops],
                        ops[-1].period,
                        max(op.at for op in ops),
                    )
                    outcomes += zip(ops, found, strict=True)
        except Exception as exc:
            for op in reserving:
                if not op.done.done():
                    op.done.set_exception(exc)
            raise
        for grow, result in grown:
            if not grow.done.done():  # its waiter is shielded: it always is there
                grow.done.set_result(result)
        for op, outcome in outcomes:
            if not op.done.done():
                op.done.set_result(outcome)
            elif isinstance(outcome, str) and budgets is not None:  # its caller left
                await budgets.release(outcome)

    @staticmethod
    async def _settle_and_insert(
        session: AsyncSession | AsyncConnection, entries: list[UsageEntry]
    ) -> None:
        settlements = [e.settlement for e in entries if e.settlement is not None]
        if settlements:
            await BudgetStore.settle(session, settlements)
        rows = [entry.row for entry in entries if entry.row is not None]
        if rows:
            await session.execute(LEDGER.insert(), rows)

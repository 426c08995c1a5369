"""The usage ledger: a row per provider call, written by group commit with the call's
budget settlement, and the budget reservations of the calls starting.

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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from symposia.governance.budgets import BudgetStore, Refused, Settlement
from symposia.storage.failures import summary
from symposia.storage.tables import UsageRow

logger = logging.getLogger(__name__)

LEDGER: Table = UsageRow.__table__  # type: ignore[assignment]
RETRY_DELAYS = (0.05, 0.2, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class ReserveOp:
    """A reservation to make in the next transaction; `done` gets its outcome."""

    key_id: str
    amount: int
    period: str | None
    at: datetime
    done: asyncio.Future[str | Refused]


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One provider call's row (the `usage_ledger` columns), and what it settles."""

    row: dict[str, Any]
    settlement: Settlement | None


class UsageLedger:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], budgets: BudgetStore | None = None
    ) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]
        self._budgets = budgets
        self._pending: list[UsageEntry | ReserveOp] = []
        self._writer: asyncio.Task[None] | None = None
        self._reserving = asyncio.Event()  # a reservation arrived during a pause

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

    def _queue(self, item: UsageEntry | ReserveOp) -> None:
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._start()

    def _start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write(), name="usage-ledger-writer"
        )

    async def flush(self) -> None:
        """Wait until every row queued so far is written (or given up on)."""
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
            batch, self._pending = self._pending, []
            entries = [item for item in batch if isinstance(item, UsageEntry)]
            reserving = [item for item in batch if isinstance(item, ReserveOp)]
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

    async def _pause(self, seconds: float) -> None:
        """Wait before trying the rows again, unless a reservation arrives: it is tried
        at once (and fails at once if the database is still down), never held."""
        self._reserving.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reserving.wait(), seconds)

    async def _together(self, entries: list[UsageEntry], reserving: list[ReserveOp]) -> None:
        """Settlements, rows and reservations in one transaction (settled first: they
        free budget). If it fails, the reservations fail with its error and it raises
        (the entries are tried again)."""
        budgets = self._budgets
        by_key: dict[str, list[ReserveOp]] = {}
        for op in reserving:
            by_key.setdefault(op.key_id, []).append(op)
        outcomes: list[tuple[ReserveOp, str | Refused]] = []
        try:
            # A connection, not a session: the statements are Core ones, and the ORM
            # session's bookkeeping per statement is CPU for nothing.
            async with self._engine.begin() as session:
                await self._settle_and_insert(session, entries)
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
        if entries:
            await session.execute(LEDGER.insert(), [entry.row for entry in entries])


def row_of(
    *,
    at: datetime,
    principal: str | None,
    key_id: str | None,
    model: str,
    provider_model: str | None,
    surface: str,
    run_id: str | None,
    conversation_id: str | None,
    response_id: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    estimated: bool,
    cost_nanos: int | None,
    latency_ms: float | None,
    ttft_ms: float | None,
    status: str,
) -> dict[str, Any]:
    """A ledger row, every column named (the insert is a Core executemany)."""
    return {
        "at": at,
        "principal": principal,
        "key_id": key_id,
        "model": model,
        "provider_model": provider_model,
        "surface": surface,
        "run_id": run_id,
        "conversation_id": conversation_id,
        "response_id": response_id,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "estimated": estimated,
        "cost_nanos": cost_nanos,
        "latency_ms": latency_ms,
        "ttft_ms": ttft_ms,
        "status": status,
    }

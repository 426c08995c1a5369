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
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
        self._budgets = budgets
        self._pending: list[UsageEntry | ReserveOp] = []
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

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
        return await done

    def _queue(self, item: UsageEntry | ReserveOp) -> None:
        self._pending.append(item)
        self._idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write(), name="usage-ledger-writer"
            )

    async def flush(self) -> None:
        """Wait until every row queued so far is written (or given up on)."""
        while self._pending or (self._writer is not None and not self._writer.done()):
            await self._idle.wait()
            if self._writer is not None and not self._writer.done():
                await asyncio.shield(self._writer)

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                entries = [item for item in batch if isinstance(item, UsageEntry)]
                reserving = [item for item in batch if isinstance(item, ReserveOp)]
                if reserving:
                    entries = await self._together(entries, reserving)
                if entries:
                    await self._commit(entries)
        finally:
            self._idle.set()

    async def _together(
        self, entries: list[UsageEntry], reserving: list[ReserveOp]
    ) -> list[UsageEntry]:
        """Settlements, rows and reservations in one transaction (settled first: they
        free budget); the entries still to write if it failed (the reservations then
        fail with its error)."""
        budgets = self._budgets
        assert budgets is not None
        by_key: dict[str, list[ReserveOp]] = {}
        for op in reserving:
            by_key.setdefault(op.key_id, []).append(op)
        outcomes: list[tuple[ReserveOp, str | Refused]] = []
        try:
            async with self._sessions.begin() as session:
                await self._settle_and_insert(session, entries)
                for key_id, ops in by_key.items():
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
            return entries
        for op, outcome in outcomes:
            if not op.done.done():
                op.done.set_result(outcome)
            elif isinstance(outcome, str):  # its caller left: give it back
                await budgets.release(outcome)
        return []

    @staticmethod
    async def _settle_and_insert(session: AsyncSession, entries: list[UsageEntry]) -> None:
        settlements = [e.settlement for e in entries if e.settlement is not None]
        if settlements:
            await BudgetStore.settle(session, settlements)
        if entries:
            await session.execute(LEDGER.insert(), [entry.row for entry in entries])

    async def _commit(self, batch: list[UsageEntry]) -> None:
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                async with self._sessions.begin() as session:
                    await self._settle_and_insert(session, batch)
                return
            except Exception as exc:
                if delay is None:
                    logger.error(
                        "usage ledger: %d rows not written after %d tries: %s",
                        len(batch),
                        attempt + 1,
                        summary(exc),
                    )
                    return
                logger.warning("usage ledger: write failed, trying again: %s", summary(exc))
                await asyncio.sleep(delay)


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

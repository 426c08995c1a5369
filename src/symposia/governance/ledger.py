"""The usage ledger: a row per provider call, written by group commit with the call's
budget settlement.

`add` only queues (the hot path waits for nothing); one writer task takes everything
queued, settles the reservations and inserts the rows in one transaction, and takes
what arrived meanwhile in the next (as stored responses are written). A write that
fails is tried again with backoff; `flush` waits until what was queued is written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.governance.budgets import BudgetStore, Settlement
from symposia.storage.failures import summary
from symposia.storage.tables import UsageRow

logger = logging.getLogger(__name__)

LEDGER: Table = UsageRow.__table__  # type: ignore[assignment]
RETRY_DELAYS = (0.05, 0.2, 1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One provider call's row (the `usage_ledger` columns), and what it settles."""

    row: dict[str, Any]
    settlement: Settlement | None


class UsageLedger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[UsageEntry] = []
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database the ledger lives in (its reports read it)."""
        return self._sessions

    def add(self, entry: UsageEntry) -> None:
        """Queue a call's row; written soon, with the others queued meanwhile."""
        self._pending.append(entry)
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
                await self._commit(batch)
        finally:
            self._idle.set()

    async def _commit(self, batch: list[UsageEntry]) -> None:
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                async with self._sessions.begin() as session:
                    for entry in batch:
                        if entry.settlement is not None:
                            await BudgetStore.settle(session, entry.settlement)
                    await session.execute(LEDGER.insert(), [entry.row for entry in batch])
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

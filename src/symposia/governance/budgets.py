"""Reservations against a key's budget, atomic in the database.

`reserve` is one conditional UPDATE of the key's counters (spent this period plus
reserved plus the new worst case must stay within the budget) and the reservation's row,
in one transaction: PostgreSQL re-checks the condition on the row it locked, SQLite runs
it under its one write lock, so no interleaving of requests, workers or machines can
admit more than the budget holds. `settle` (in the ledger's group commit) swaps the
reservation for the actual cost; the holding process renews its reservations' leases
and any process releases those whose lease lapsed (their process died).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.governance.limits import period_index
from symposia.storage.tables import KeyLimitRow, KeyReservationRow

SWEEP_BATCH = 200


@dataclass(frozen=True, slots=True)
class Refused:
    """The reservation did not fit: what was left of the budget when it was asked."""

    budget_nanos: int
    spent_nanos: int
    reserved_nanos: int

    @property
    def remaining_nanos(self) -> int:
        return max(0, self.budget_nanos - self.spent_nanos - self.reserved_nanos)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a finished call owes: its reservation (if it held one) becomes `actual`."""

    key_id: str
    reservation_id: str | None
    actual_nanos: int
    period: str | None
    at: datetime


def _spent_in(current: int) -> Any:
    """The key's spend in period `current`: zero if its counters are of an earlier one."""
    return case((KeyLimitRow.period_index >= current, KeyLimitRow.spent_nanos), else_=0)


def _period_now(current: int) -> Any:
    return case((KeyLimitRow.period_index >= current, KeyLimitRow.period_index), else_=current)


class BudgetStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], holder: str, lease_seconds: float
    ) -> None:
        self._sessions = sessions
        self.holder = holder
        self.lease_seconds = lease_seconds

    async def reserve(
        self, key_id: str, amount: int, period: str | None, now: datetime
    ) -> str | Refused:
        """The new reservation's id, or what was left when `amount` did not fit."""
        current = period_index(period, now)
        spent = _spent_in(current)
        reservation = secrets.token_hex(16)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(KeyLimitRow)
                .where(
                    KeyLimitRow.key_id == key_id,
                    KeyLimitRow.max_budget_nanos.is_not(None),
                    spent + KeyLimitRow.reserved_nanos + amount <= KeyLimitRow.max_budget_nanos,
                )
                .values(
                    reserved_nanos=KeyLimitRow.reserved_nanos + amount,
                    spent_nanos=spent,
                    period_index=_period_now(current),
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                session.add(
                    KeyReservationRow(
                        id=reservation,
                        key_id=key_id,
                        amount_nanos=amount,
                        holder=self.holder,
                        lease_until=time.time() + self.lease_seconds,
                    )
                )
                return reservation
            row = (
                await session.execute(
                    select(spent, KeyLimitRow.reserved_nanos, KeyLimitRow.max_budget_nanos).where(
                        KeyLimitRow.key_id == key_id
                    )
                )
            ).first()
        if row is None:
            return Refused(0, 0, 0)
        return Refused(int(row[2] or 0), int(row[0]), int(row[1]))

    async def release(self, reservation_id: str) -> None:
        """Give a reservation back whole (its call never reached the provider)."""
        async with self._sessions.begin() as session:
            await _release(session, reservation_id)

    @staticmethod
    async def settle(session: AsyncSession, settlement: Settlement) -> None:
        """In the caller's transaction: drop the reservation and count the actual cost
        (a reservation already released by a sweep was taken off `reserved` then)."""
        released = 0
        if settlement.reservation_id is not None:
            released = await _take(session, settlement.reservation_id)
        current = period_index(settlement.period, settlement.at)
        await session.execute(
            update(KeyLimitRow)
            .where(KeyLimitRow.key_id == settlement.key_id)
            .values(
                reserved_nanos=KeyLimitRow.reserved_nanos - released,
                spent_nanos=_spent_in(current) + settlement.actual_nanos,
                period_index=_period_now(current),
            )
            .execution_options(synchronize_session=False)
        )

    async def renew(self) -> int:
        """Extend the leases of this process's reservations (its calls are alive)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(KeyReservationRow)
                .where(KeyReservationRow.holder == self.holder)
                .values(lease_until=time.time() + self.lease_seconds)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def sweep(self) -> int:
        """Release the reservations whose lease lapsed: their process is gone."""
        now = time.time()
        async with self._sessions.begin() as session:
            lapsed = list(
                await session.scalars(
                    select(KeyReservationRow.id)
                    .where(KeyReservationRow.lease_until < now)
                    .limit(SWEEP_BATCH)
                )
            )
            for reservation_id in lapsed:
                await _release(session, reservation_id, lapsed_before=now)
        return len(lapsed)


async def _take(session: AsyncSession, reservation_id: str) -> int:
    """Delete a reservation; its amount, or 0 if it was gone (released by a sweep)."""
    found = await session.execute(
        delete(KeyReservationRow)
        .where(KeyReservationRow.id == reservation_id)
        .returning(KeyReservationRow.amount_nanos)
    )
    amount = found.scalar()
    return int(amount) if amount is not None else 0


async def _release(
    session: AsyncSession, reservation_id: str, lapsed_before: float | None = None
) -> None:
    found = await session.execute(
        delete(KeyReservationRow)
        .where(
            KeyReservationRow.id == reservation_id,
            *([KeyReservationRow.lease_until < lapsed_before] if lapsed_before is not None else []),
        )
        .returning(KeyReservationRow.key_id, KeyReservationRow.amount_nanos)
    )
    row = found.first()
    if row is None:
        return
    await session.execute(
        update(KeyLimitRow)
        .where(KeyLimitRow.key_id == row[0])
        .values(reserved_nanos=KeyLimitRow.reserved_nanos - int(row[1]))
        .execution_options(synchronize_session=False)
    )

"""Reservations against a key's budget, atomic in the database.

`reserve_in` locks the key's row with its first statement (an UPDATE: PostgreSQL's row
lock, SQLite's write lock), decides which of the reservations queued for it fit, and
adds them with one conditional UPDATE and their rows, in one transaction, so no
interleaving of requests, workers or machines can admit more than the budget holds.
`settle` (in the ledger's group commit) swaps reservations for their actual costs; the
holding process renews its reservations' leases and any process releases those whose
lease lapsed (their process died).

A slice (`grow_in`, id prefixed `s:`) is a reservation a process holds for many calls
(`governance.slices`): it grows by one transaction when it runs short, each settlement
takes the call's actual cost out of it (and may give back what it holds unused), and a
slice whose lease lapsed is charged as spent with a `lost` ledger row, as its process
may have spent any of it before it died.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from symposia.governance.limits import period_index
from symposia.governance.usage_rows import LEDGER, row_of
from symposia.storage.tables import KeyLimitRow, KeyReservationRow

SWEEP_BATCH = 200
SLICE_PREFIX = "s:"  # a slice's reservation id; never a hex digit, so never a call's
RESERVATIONS: Table = KeyReservationRow.__table__  # type: ignore[assignment]
KEYS: Table = KeyLimitRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Refused:
    """The reservation did not fit: what was left of the budget when it was asked."""

    budget_nanos: int
    spent_nanos: int
    reserved_nanos: int
    # What other processes' slices hold of `reserved_nanos`: some may be unused, and
    # is given back when they go idle (a request that would fit then waits for it).
    others_nanos: int = 0

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
    returned_nanos: int = 0  # a slice's: what its holder gives back unused, with it


@dataclass(frozen=True, slots=True)
class Grown:
    """A slice grown by `granted` (a new slice if `slice_id` is not the one asked for)."""

    slice_id: str
    granted: int


def is_slice(reservation_id: str | None) -> bool:
    return reservation_id is not None and reservation_id.startswith(SLICE_PREFIX)


def _spent_in(current: Any) -> Any:
    """The key's spend in period `current`: zero if its counters are of an earlier one."""
    return case((KEYS.c.period_index >= current, KEYS.c.spent_nanos), else_=0)


def _period_now(current: Any) -> Any:
    return case((KEYS.c.period_index >= current, KEYS.c.period_index), else_=current)


# The group commit's statements, built once: Core statements on the tables with bound
# parameters (no ORM bulk path, no statement built and cache-keyed per call), as each
# runs for every batch of every process.
_CURRENT = bindparam("current", type_=KEYS.c.period_index.type)
_READ = (
    update(KEYS)
    .where(KEYS.c.key_id == bindparam("key"))
    .values(spent_nanos=_spent_in(_CURRENT), period_index=_period_now(_CURRENT))
    .returning(KEYS.c.spent_nanos, KEYS.c.reserved_nanos, KEYS.c.max_budget_nanos)
)
_ADD = (
    update(KEYS)
    .where(
        KEYS.c.key_id == bindparam("key"),
        KEYS.c.spent_nanos
        + KEYS.c.reserved_nanos
        + bindparam("total", type_=KEYS.c.spent_nanos.type)
        <= KEYS.c.max_budget_nanos,
    )
    .values(reserved_nanos=KEYS.c.reserved_nanos + bindparam("total"))
)
_DROP = (
    delete(RESERVATIONS)
    .where(RESERVATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .returning(RESERVATIONS.c.key_id, RESERVATIONS.c.amount_nanos)
)
_SETTLE = (
    update(KEYS)
    .where(KEYS.c.key_id == bindparam("key"))
    .values(
        reserved_nanos=KEYS.c.reserved_nanos
        - bindparam("released", type_=KEYS.c.reserved_nanos.type),
        spent_nanos=_spent_in(_CURRENT) + bindparam("actual", type_=KEYS.c.spent_nanos.type),
        period_index=_period_now(_CURRENT),
    )
)
_OTHERS = select(
    func.coalesce(func.sum(RESERVATIONS.c.amount_nanos), 0),
    func.count(distinct(RESERVATIONS.c.holder)),
).where(
    RESERVATIONS.c.key_id == bindparam("key"),
    RESERVATIONS.c.holder != bindparam("owner"),
    RESERVATIONS.c.id.like(SLICE_PREFIX + "%"),
)
_GROW = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.id == bindparam("slice"), RESERVATIONS.c.holder == bindparam("owner"))
    .values(
        amount_nanos=RESERVATIONS.c.amount_nanos
        + bindparam("more", type_=RESERVATIONS.c.amount_nanos.type),
        lease_until=bindparam("lease", type_=RESERVATIONS.c.lease_until.type),
    )
)
_HELD = select(RESERVATIONS.c.key_id, RESERVATIONS.c.amount_nanos).where(
    RESERVATIONS.c.id == bindparam("slice")
)
_SHRINK = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.id == bindparam("slice"))
    .values(
        amount_nanos=RESERVATIONS.c.amount_nanos
        - bindparam("less", type_=RESERVATIONS.c.amount_nanos.type)
    )
)
_GIVE_BACK = (
    delete(RESERVATIONS)
    .where(RESERVATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .returning(RESERVATIONS.c.key_id, RESERVATIONS.c.amount_nanos)
)
_UNRESERVE = (
    update(KEYS)
    .where(KEYS.c.key_id == bindparam("key"))
    .values(
        reserved_nanos=KEYS.c.reserved_nanos
        - bindparam("released", type_=KEYS.c.reserved_nanos.type)
    )
)


class BudgetStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], holder: str, lease_seconds: float
    ) -> None:
        self._sessions = sessions
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.held: set[str] = set()  # this process's reservations at its last renewal

    async def reserve(
        self, key_id: str, amount: int, period: str | None, now: datetime
    ) -> str | Refused:
        """The new reservation's id, or what was left when `amount` did not fit."""
        async with self._sessions.begin() as session:
            (found,) = await self.reserve_in(session, key_id, [amount], period, now)
            return found

    async def reserve_in(
        self,
        session: AsyncSession | AsyncConnection,
        key_id: str,
        amounts: list[int],
        period: str | None,
        now: datetime,
    ) -> list[str | Refused]:
        """Reservations of `amounts` (in order) against one key, in the caller's
        transaction (the ledger's group commit): a reservation id for each that fits
        after those before it, else what was left.

        The first statement locks the key's row (PostgreSQL's row lock, SQLite's write
        lock) while it rolls the counters into the current period and reads them; the
        last adds what fitted, on the condition that it still fits (it must: the row
        is held), so no other transaction can interleave between reading and adding."""
        current = period_index(period, now)
        read = (await session.execute(_READ, {"key": key_id, "current": current})).first()
        if read is None or read[2] is None:
            return [Refused(0, 0, 0) for _ in amounts]
        spent, reserved, budget = int(read[0]), int(read[1]), int(read[2])
        outcomes: list[str | Refused] = []
        rows: list[dict[str, object]] = []
        total = 0
        lease = time.time() + self.lease_seconds
        for amount in amounts:
            if spent + reserved + total + amount > budget:
                outcomes.append(Refused(budget, spent, reserved + total))
                continue
            total += amount
            reservation = secrets.token_hex(16)
            outcomes.append(reservation)
            rows.append(
                {
                    "id": reservation,
                    "key_id": key_id,
                    "amount_nanos": amount,
                    "holder": self.holder,
                    "lease_until": lease,
                }
            )
        if rows:
            added = await session.execute(_ADD, {"key": key_id, "total": total})
            if getattr(added, "rowcount", 0) != 1:  # cannot happen while the row is held
                raise RuntimeError(f"key {key_id}: its budget changed under a held row")
            await session.execute(RESERVATIONS.insert(), rows)
        return outcomes

    async def grow_in(
        self,
        session: AsyncSession | AsyncConnection,
        key_id: str,
        slice_id: str | None,
        need: int,
        cap: int,
        period: str | None,
        now: datetime,
    ) -> Grown | Refused:
        """Grow this process's slice of the key by `need` and some headroom, in the
        caller's transaction, under the key's row lock as `reserve_in`: the headroom is
        the smaller of `cap` and the free budget past `need` shared by twice the
        processes holding slices of it, so one process never holds what the others
        would need. Refused (with what other slices hold) if `need` does not fit."""
        current = period_index(period, now)
        read = (await session.execute(_READ, {"key": key_id, "current": current})).first()
        if read is None or read[2] is None:
            return Refused(0, 0, 0)
        spent, reserved, budget = int(read[0]), int(read[1]), int(read[2])
        others, holders = (
            await session.execute(_OTHERS, {"key": key_id, "owner": self.holder})
        ).one()
        free = budget - spent - reserved
        if need > free:
            return Refused(budget, spent, reserved, int(others))
        granted = need + max(0, min(cap, (free - need) // (2 * (int(holders) + 1))))
        added = await session.execute(_ADD, {"key": key_id, "total": granted})
        if getattr(added, "rowcount", 0) != 1:  # cannot happen while the row is held
            raise RuntimeError(f"key {key_id}: its budget changed under a held row")
        lease = time.time() + self.lease_seconds
        if slice_id is not None:
            grown = await session.execute(
                _GROW, {"slice": slice_id, "owner": self.holder, "more": granted, "lease": lease}
            )
            if getattr(grown, "rowcount", 0) == 1:
                return Grown(slice_id, granted)
        # None yet, or it was released as lapsed (this process stalled): a new one.
        new_id = SLICE_PREFIX + secrets.token_hex(15)
        await session.execute(
            RESERVATIONS.insert(),
            [
                {
                    "id": new_id,
                    "key_id": key_id,
                    "amount_nanos": granted,
                    "holder": self.holder,
                    "lease_until": lease,
                }
            ],
        )
        return Grown(new_id, granted)

    @staticmethod
    async def give_back_in(session: AsyncSession | AsyncConnection, slice_ids: list[str]) -> None:
        """In the caller's transaction: release whole slices (their process is idle)."""
        if not slice_ids:
            return
        released: dict[str, int] = {}
        for key_id, amount in (await session.execute(_GIVE_BACK, {"ids": slice_ids})).all():
            released[key_id] = released.get(key_id, 0) + int(amount)
        for key_id, amount in released.items():
            await session.execute(_UNRESERVE, {"key": key_id, "released": amount})

    async def release(self, reservation_id: str) -> None:
        """Give a reservation back whole (its call never reached the provider)."""
        async with self._sessions.begin() as session:
            await _release(session, reservation_id)

    @staticmethod
    async def settle(
        session: AsyncSession | AsyncConnection, settlements: list[Settlement]
    ) -> None:
        """In the caller's transaction: drop the reservations and count the actual costs,
        one statement for the reservations and one per key (a reservation already
        released by a sweep was taken off `reserved` then, so it is not again)."""
        held = [
            s.reservation_id
            for s in settlements
            if s.reservation_id is not None and not is_slice(s.reservation_id)
        ]
        released = await _out_of_slices(session, settlements)
        if held:
            found = await session.execute(_DROP, {"ids": held})
            for key_id, amount in found.all():
                released[key_id] = released.get(key_id, 0) + int(amount)
        owed: dict[tuple[str, int], int] = {}
        for settlement in settlements:
            group = (settlement.key_id, period_index(settlement.period, settlement.at))
            owed[group] = owed.get(group, 0) + settlement.actual_nanos
        for (key_id, current), actual in owed.items():
            await session.execute(
                _SETTLE,
                {
                    "key": key_id,
                    "current": current,
                    "released": released.pop(key_id, 0),
                    "actual": actual,
                },
            )

    async def renew(self) -> int:
        """Extend the leases of this process's reservations (its calls are alive); the
        ids of those it still holds are `held` (a slice missing from them was charged as
        lapsed while this process stalled: it must not admit against it)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RESERVATIONS)
                .where(RESERVATIONS.c.holder == self.holder)
                .values(lease_until=time.time() + self.lease_seconds)
                .returning(RESERVATIONS.c.id)
            )
            self.held = {str(found) for found in result.scalars()}
        return len(self.held)

    async def sweep(self) -> int:
        """Release the reservations whose lease lapsed: their process is gone. A lapsed
        slice is charged as spent, with a `lost` ledger row: its process may have spent
        any of it (its calls' rows were queued, or they were cut mid-stream)."""
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
                if is_slice(reservation_id):
                    await _charge_lost(session, reservation_id, now)
                else:
                    await _release(session, reservation_id, lapsed_before=now)
        return len(lapsed)


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


async def _out_of_slices(
    session: AsyncSession | AsyncConnection, settlements: list[Settlement]
) -> dict[str, int]:
    """Take the settled calls' costs (and what their holder gives back) out of their
    slices; what each key's `reserved` loses by it. A slice already charged as lapsed
    gives nothing (its cost is then counted again, as for a released reservation)."""
    less: dict[str, int] = {}
    for settlement in settlements:
        if is_slice(settlement.reservation_id):
            assert settlement.reservation_id is not None
            taken = settlement.actual_nanos + settlement.returned_nanos
            less[settlement.reservation_id] = less.get(settlement.reservation_id, 0) + taken
    released: dict[str, int] = {}
    for slice_id, amount in less.items():
        row = (await session.execute(_HELD, {"slice": slice_id})).first()
        if row is None:
            continue
        taken = min(amount, int(row[1]))
        await session.execute(_SHRINK, {"slice": slice_id, "less": taken})
        released[row[0]] = released.get(row[0], 0) + taken
    return released


async def _charge_lost(session: AsyncSession, slice_id: str, lapsed_before: float) -> None:
    found = await session.execute(
        delete(RESERVATIONS)
        .where(RESERVATIONS.c.id == slice_id, RESERVATIONS.c.lease_until < lapsed_before)
        .returning(RESERVATIONS.c.key_id, RESERVATIONS.c.amount_nanos)
    )
    row = found.first()
    if row is None:
        return
    key_id, amount = str(row[0]), int(row[1])
    period = await session.scalar(select(KEYS.c.budget_period).where(KEYS.c.key_id == key_id))
    now = datetime.now(UTC)
    current = period_index(period, now)
    await session.execute(
        _SETTLE, {"key": key_id, "current": current, "released": amount, "actual": amount}
    )
    if amount:
        await session.execute(
            LEDGER.insert(),
            [
                row_of(
                    at=now,
                    principal=f"key:{key_id}",
                    key_id=key_id,
                    model="-",
                    provider_model=None,
                    surface="lapsed",
                    run_id=None,
                    conversation_id=None,
                    response_id=None,
                    prompt_tokens=0,
                    completion_tokens=0,
                    estimated=True,
                    cost_nanos=amount,
                    latency_ms=None,
                    ttft_ms=None,
                    status="lost",
                )
            ],
        )

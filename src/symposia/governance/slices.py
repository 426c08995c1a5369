"""A process's slice of each key's budget: calls are admitted against it in memory.

Reserving every call's worst case in the database made each budgeted request wait for
a committed transaction before its upstream call. Instead a process reserves a slice of
the key's remaining budget once (a `key_reservations` row with its lease, so a dead
process's slice lapses) and admits calls against it with no await on the database:
a call fits if the worst cases of the calls open plus its own fit in the slice. A
finished call's actual cost leaves the slice in memory at once and in the database with
its ledger row (group commit, off the request's path).

The slice grows when a call does not fit: one transaction for that request alone,
shared by the calls that arrive meanwhile; it grows by what is missing and a headroom,
the smaller of (the most calls it had open at once, at least `HEADROOM_CALLS`) recent
worst cases and the free budget shared by twice the processes holding slices of the key
(`BudgetStore.grow_in`). What a slice holds unused past that headroom is given back
with the settlements, and all of it once no call is open for `IDLE_SECONDS` (or at
shutdown, or on a flush).

Refusal rule: a call is refused only if what it still needs does not fit in the key's
free budget (budget, minus spent, minus every reservation and slice), and either no
other process holds a slice of the key or, after waiting up to `WAIT_SECONDS` for them
to give back what they do not use, it still does not. So a call is refused falsely only
if the free budget plus the other slices' unused parts would fit it and those processes
stay busy for `WAIT_SECONDS`; each busy process then holds unused at most its headroom
(its peak of open and waiting calls, at least `HEADROOM_CALLS`, times its recent worst case; and at
its last growth no more than the free budget over twice the slice holders) plus the
worst case of one finishing call.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime

from symposia.governance.budgets import Grown, Refused
from symposia.governance.ledger import UsageLedger

IDLE_SECONDS = 0.5
WAIT_SECONDS = 1.0
POLL_SECONDS = 0.05
HEADROOM_CALLS = 4


@dataclass(slots=True)
class _Slice:
    id: str | None = None
    size: int = 0  # what the slice holds, as this process counts it (settled costs out)
    open: int = 0  # the worst cases of the calls admitted and not finished
    calls: int = 0
    worst: int = 0  # the latest call's worst case: the headroom's unit
    peak: int = 0  # the most calls open at once since the slice was last given back
    waiting: int = 0  # calls that did not fit and wait for a growth
    growing: asyncio.Task[Grown | Refused] | None = None
    idle: asyncio.TimerHandle | None = field(default=None, repr=False)


class BudgetBook:
    """The slices this process holds, one per budgeted key."""

    def __init__(
        self,
        ledger: UsageLedger,
        idle_seconds: float = IDLE_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        self._ledger = ledger
        self._slices: dict[str, _Slice] = {}
        self.idle_seconds = idle_seconds
        self.wait_seconds = wait_seconds
        ledger.before_flush(self.give_back_idle)

    async def take(
        self, key_id: str, worst: int, period: str | None, at: datetime
    ) -> str | Refused:
        """Admit a call of worst case `worst`: the slice's id, or what was left."""
        held = self._slices.get(key_id)
        if held is None:
            held = self._slices[key_id] = _Slice()
        held.worst = worst
        if held.id is not None and held.open + worst <= held.size:  # the hot path
            return self._admit(held, worst)
        held.waiting += 1  # counted in the headroom: a growth is for the calls queued too
        try:
            return await self._take_slow(key_id, held, worst, period, at)
        finally:
            held.waiting -= 1

    async def _take_slow(
        self, key_id: str, held: _Slice, worst: int, period: str | None, at: datetime
    ) -> str | Refused:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while True:
            if held.id is not None and held.open + worst <= held.size:
                return self._admit(held, worst)
            if held.growing is not None and not held.growing.done():  # share that grow
                with contextlib.suppress(Exception):
                    await asyncio.shield(held.growing)
                continue
            need = held.open + worst - (held.size if held.id is not None else 0)
            task = loop.create_task(self._grow(key_id, held, need, period, at))
            held.growing = task
            found = await asyncio.shield(task)
            if isinstance(found, Grown):
                continue
            unused = max(0, held.size - held.open) if held.id is not None else 0
            waits = found.others_nanos and found.remaining_nanos + found.others_nanos >= need
            if not waits or loop.time() >= deadline:
                self._idle_later(key_id, held)
                # What is left for this call: the free budget and this slice's unused part.
                return Refused(
                    found.budget_nanos, found.spent_nanos, max(0, found.reserved_nanos - unused)
                )
            await asyncio.sleep(POLL_SECONDS)  # other processes are to give theirs back

    def _admit(self, held: _Slice, worst: int) -> str:
        held.open += worst
        held.calls += 1
        if held.calls > held.peak:
            held.peak = held.calls
        if held.idle is not None:
            held.idle.cancel()
            held.idle = None
        assert held.id is not None
        return held.id

    async def _grow(
        self, key_id: str, held: _Slice, need: int, period: str | None, at: datetime
    ) -> Grown | Refused:
        cap = _headroom(held)
        try:
            found = await self._ledger.grow(key_id, held.id, need, cap, period, at)
        finally:
            held.growing = None  # before the task is done: its waiters look again
        if isinstance(found, Grown):
            if found.slice_id == held.id:
                held.size += found.granted
            else:  # a new slice (the first, or the old one lapsed while this stalled)
                held.id, held.size = found.slice_id, found.granted
        return found

    def settle(self, key_id: str, slice_id: str, worst: int, actual: int) -> int:
        """A call admitted on `slice_id` finished at `actual`: take it out of the slice;
        what the slice gives back unused with this settlement (past its headroom)."""
        held = self._slices.get(key_id)
        if held is None:
            return 0
        held.open = max(0, held.open - worst)
        held.calls = max(0, held.calls - 1)
        returned = 0
        if held.id == slice_id:
            held.size -= min(actual, held.size)
            keep = held.open + _headroom(held)
            if held.size > keep + held.worst:
                returned = held.size - keep
                held.size = keep
        self._idle_later(key_id, held)
        return returned

    def untake(self, key_id: str, worst: int) -> None:
        """Undo a `take` whose call is not made (a check that the budget holds it)."""
        held = self._slices.get(key_id)
        if held is None:
            return
        held.open = max(0, held.open - worst)
        held.calls = max(0, held.calls - 1)
        self._idle_later(key_id, held)

    def _idle_later(self, key_id: str, held: _Slice) -> None:
        if held.calls == 0 and held.idle is None and held.id is not None:
            held.idle = asyncio.get_running_loop().call_later(
                self.idle_seconds, self._give_back, key_id
            )

    def _give_back(self, key_id: str) -> None:
        held = self._slices.get(key_id)
        if held is None:
            return
        held.idle = None
        if held.calls or held.id is None:
            return
        if held.growing is not None:  # a call is on its way in: look again later
            self._idle_later(key_id, held)
            return
        self._ledger.give_back(held.id)
        held.id, held.size, held.peak = None, 0, 0

    def keep_only(self, held: set[str]) -> None:
        """Forget the slices the database no longer holds for this process (charged as
        lapsed while it stalled): its next call grows a new one, or is refused."""
        for found in self._slices.values():
            if found.id is not None and found.id not in held:
                found.id, found.size, found.peak = None, 0, 0

    def give_back_idle(self) -> None:
        """Give back now every slice with no call open (a flush, the shutdown)."""
        for key_id, held in list(self._slices.items()):
            if held.idle is not None:
                held.idle.cancel()
            self._give_back(key_id)


def _headroom(held: _Slice) -> int:
    """What a slice may hold past its open calls: as many recent worst cases as the
    most calls it had open or waiting at once (at least `HEADROOM_CALLS`), so a steady
    load grows it about once, not at every burst (its budget-wide bound is
    `BudgetStore.grow_in`'s). Waiting calls count: without them the peak could never pass
    what the slice already held, and each growth went back with the next settlements."""
    held.peak = max(held.peak, held.calls + held.waiting)
    return max(HEADROOM_CALLS, held.peak) * held.worst

"""Keys' limits: read (cached a few seconds, as key lookups are) and written by admins.

A key with no row here has no limits. Static keys (API_KEYS) get a row by their id
(`env-...`) like any other: `symposia keys update env-... --budget 10`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.governance.limits import KeyLimits
from symposia.storage.convert import aware
from symposia.storage.tables import KeyLimitRow

CACHE_SECONDS = 10.0  # how long a change may take to reach another running server
NO_LIMITS = None

# The columns an admin sets (the counters are the budget's own).
SETTABLE = (
    "max_budget_nanos",
    "budget_period",
    "models",
    "rpm",
    "tpm",
    "max_parallel",
    "expires_at",
    "metadata",
    "admin",
)


def _of(row: KeyLimitRow) -> KeyLimits:
    return KeyLimits(
        key_id=row.key_id,
        max_budget_nanos=row.max_budget_nanos,
        budget_period=row.budget_period or "none",  # type: ignore[arg-type]
        models=row.models,
        rpm=row.rpm,
        tpm=row.tpm,
        max_parallel=row.max_parallel,
        expires_at=aware(row.expires_at),
        metadata=row.meta or {},
        admin=bool(row.admin),
        period_index=row.period_index or 0,
        spent_nanos=row.spent_nanos or 0,
        reserved_nanos=row.reserved_nanos or 0,
    )


class KeyLimitStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cache: dict[str, tuple[float, KeyLimits | None]] = {}

    async def cached(self, key_id: str) -> KeyLimits | None:
        """The key's limits as of at most CACHE_SECONDS ago (its counters may be older:
        the database's conditional update is what decides a reservation)."""
        found = self._cache.get(key_id)
        if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
            return found[1]
        return await self.get(key_id)

    async def get(self, key_id: str) -> KeyLimits | None:
        async with self._sessions() as session:
            row = await session.get(KeyLimitRow, key_id)
            limits = _of(row) if row is not None else None
        self._cache[key_id] = (time.monotonic(), limits)
        return limits

    async def many(self, key_ids: list[str]) -> dict[str, KeyLimits]:
        async with self._sessions() as session:
            rows = await session.scalars(select(KeyLimitRow).where(KeyLimitRow.key_id.in_(key_ids)))
            return {row.key_id: _of(row) for row in rows}

    async def set(self, key_id: str, changes: dict[str, Any]) -> KeyLimits:
        """Set some of a key's limits (`SETTABLE` names; None clears one)."""
        unknown = set(changes) - set(SETTABLE)
        if unknown:
            raise ValueError(f"not a key limit: {', '.join(sorted(unknown))}")
        async with self._sessions.begin() as session:
            row = await session.get(KeyLimitRow, key_id, with_for_update=True)
            if row is None:
                row = KeyLimitRow(
                    key_id=key_id, admin=False, period_index=0, spent_nanos=0, reserved_nanos=0
                )
                session.add(row)
            for name, value in changes.items():
                if name == "metadata":
                    row.meta = value
                elif name == "budget_period":
                    row.budget_period = None if value in (None, "none") else value
                elif name == "admin":
                    row.admin = bool(value)
                else:
                    setattr(row, name, value)
            await session.flush()
            limits = _of(row)
        self._cache[key_id] = (time.monotonic(), limits)
        return limits

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)


def expired(limits: KeyLimits | None, now: datetime) -> bool:
    return limits is not None and limits.expired(now)

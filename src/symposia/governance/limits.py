"""What a key carries: a budget per period, allowed models, rate limits, expiry.

Money is counted in nano-dollars (integers): a reservation, its settlement and the
ledger's rows then add up exactly, in any order, on any database.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from symposia.errors import InvalidInputError

Period = Literal["day", "week", "month", "none"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "none")
NANOS_PER_USD = 1_000_000_000
_DURATION = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def to_nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


def to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def period_index(period: str | None, now: datetime) -> int:
    """Which period `now` falls in: days or (Monday-based) weeks since 1970, months
    since year 0; 0 for a one-off grant. Integers compare the same on every database."""
    if period == "day":
        return (now.date() - datetime(1970, 1, 1).date()).days
    if period == "week":
        return (now.date() - datetime(1970, 1, 5).date()).days // 7  # 1970-01-05: a Monday
    if period == "month":
        return now.year * 12 + now.month - 1
    return 0


def period_start(period: str | None, now: datetime) -> datetime | None:
    """When the period `now` falls in began (None: a one-off grant has no start)."""
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return datetime(now.year, now.month, 1, tzinfo=UTC)
    return None


def parse_expires(value: str, now: datetime) -> datetime:
    """`30d`, `12h`, `2w` from now, or an ISO 8601 time (UTC when it names no zone)."""
    match = _DURATION.match(value.strip())
    if match is not None:
        return now + int(match.group(1)) * _UNITS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"expires {value!r}: a duration such as 30d, 12h, 2w, or an ISO 8601 time",
            "expires_at",
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def model_allowed(patterns: list[str] | None, *names: str) -> bool:
    """Whether any of a model's `names` (as asked, as resolved) matches an allowed
    pattern (`openai/*`, `local/*`, an exact name); no list allows every model."""
    if patterns is None:
        return True
    return any(fnmatch.fnmatchcase(name, p) for p in patterns for name in names if name)


@dataclass(slots=True)
class KeyLimits:
    """A key's limits; None means unlimited. `spent_nanos` and `reserved_nanos` are the
    budget's counters as last read (the database holds the truth)."""

    key_id: str
    max_budget_nanos: int | None = None
    budget_period: Period = "none"
    models: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    admin: bool = False
    period_index: int = 0
    spent_nanos: int = 0
    reserved_nanos: int = 0

    @property
    def budgeted(self) -> bool:
        return self.max_budget_nanos is not None

    @property
    def limits_rate(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_parallel is not None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def spent_now(self, now: datetime) -> int:
        """What was spent in the current period (nothing yet, if the counters are of an
        earlier one)."""
        current = period_index(self.budget_period, now)
        return self.spent_nanos if self.period_index == current else 0

    def to_dict(self, now: datetime) -> dict[str, Any]:
        spent = self.spent_now(now)
        budget = self.max_budget_nanos
        remaining = None if budget is None else max(0, budget - spent - self.reserved_nanos)
        start = period_start(self.budget_period, now)
        return {
            "id": self.key_id,
            "max_budget_usd": None if budget is None else to_usd(budget),
            "budget_period": self.budget_period,
            "period_start": start.isoformat() if start is not None else None,
            "spent_usd": to_usd(spent),
            "reserved_usd": to_usd(self.reserved_nanos),
            "remaining_usd": None if remaining is None else to_usd(remaining),
            "models": self.models,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "max_parallel": self.max_parallel,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "metadata": self.metadata,
            "admin": self.admin,
        }

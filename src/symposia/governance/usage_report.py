"""Reading the usage ledger: totals grouped by key, model, day, principal or surface."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.governance.limits import to_usd
from symposia.storage.tables import UsageRow

GROUPS = ("key", "model", "day", "principal", "surface", "status")


def _column(name: str, dialect: str) -> Any:
    if name == "day":
        day = func.date(UsageRow.at) if dialect == "sqlite" else cast(UsageRow.at, Date)
        return day.label("day")
    column = {
        "key": UsageRow.key_id,
        "model": UsageRow.model,
        "principal": UsageRow.principal,
        "surface": UsageRow.surface,
        "status": UsageRow.status,
    }[name]
    return column.label(name)


async def totals(
    sessions: async_sessionmaker[AsyncSession],
    group_by: list[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    key_id: str | None = None,
    principal: str | None = None,
) -> list[dict[str, Any]]:
    """One row per group: calls, tokens and cost (US dollars), within [start, end)."""
    async with sessions() as session:
        dialect = session.get_bind().dialect.name
        columns = [_column(name, dialect) for name in group_by]
        query = select(
            *columns,
            func.count().label("calls"),
            func.coalesce(func.sum(UsageRow.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(UsageRow.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(UsageRow.cost_nanos), 0).label("cost_nanos"),
        )
        if start is not None:
            query = query.where(UsageRow.at >= start)
        if end is not None:
            query = query.where(UsageRow.at < end)
        if key_id is not None:
            query = query.where(UsageRow.key_id == key_id)
        if principal is not None:
            query = query.where(UsageRow.principal == principal)
        if columns:
            query = query.group_by(*columns).order_by(*columns)
        rows = (await session.execute(query)).all()
    found = []
    for row in rows:
        item = {name: _text(getattr(row, name)) for name in group_by}
        item.update(
            calls=int(row.calls),
            prompt_tokens=int(row.prompt_tokens),
            completion_tokens=int(row.completion_tokens),
            cost_usd=to_usd(int(row.cost_nanos)),
        )
        found.append(item)
    return found


def _text(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value

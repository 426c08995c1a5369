"""Giving one principal's runs, conversations and stored responses to another.

`symposia keys create --adopt-anonymous` uses it: on an open server everything belongs to
the anonymous `local` principal, and the first API key turns authentication on, after
which those objects would be visible to nobody.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.storage.tables import ConversationRow, ResponseRow, RunRow

OWNED: dict[str, type[RunRow] | type[ConversationRow] | type[ResponseRow]] = {
    "runs": RunRow,
    "conversations": ConversationRow,
    "responses": ResponseRow,
}


async def adopt(
    sessions: async_sessionmaker[AsyncSession], from_owner: str, to_owner: str
) -> dict[str, int]:
    """Move every object of `from_owner` to `to_owner` in one transaction; how many of
    each kind moved."""
    moved: dict[str, int] = {}
    async with sessions.begin() as session:
        for name, row in OWNED.items():
            result = await session.execute(
                update(row).where(row.owner == from_owner).values(owner=to_owner)
            )
            moved[name] = int(getattr(result, "rowcount", 0) or 0)
    return moved

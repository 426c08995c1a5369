"""How many runs, conversations and messages an owner has: the service-info stats of `GET /`."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from symposia.storage.tables import ConversationRow, MessageRow, RunRow


async def counts(engine: AsyncEngine, owner: str) -> dict[str, int]:
    """Counts of what `owner`'s listings show (their runs and conversations, and the
    messages in them): one round trip of three scalar subqueries."""
    runs = select(RunRow.id).where(RunRow.owner == owner)
    conversations = select(ConversationRow.id).where(ConversationRow.owner == owner)
    messages = select(func.count(MessageRow.id)).where(
        or_(MessageRow.run_id.in_(runs), MessageRow.conversation_id.in_(conversations))
    )
    query = select(
        select(func.count()).select_from(runs.subquery()).scalar_subquery(),
        select(func.count()).select_from(conversations.subquery()).scalar_subquery(),
        messages.scalar_subquery(),
    )
    async with engine.connect() as db:
        row = (await db.execute(query)).one()
    return {"runs": row[0], "conversations": row[1], "messages": row[2]}

"""Conversations and their messages in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import Conversation, Message, utcnow
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.convert import (
    conversation_of,
    conversation_row,
    message_of,
    message_row,
)
from symposia.storage.sql_runs import next_seq
from symposia.storage.tables import ConversationRow, MessageRow, ReplyRow


@cancel_safe
class SqlConversationRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, conversation: Conversation) -> None:
        async with self._sessions.begin() as session:
            session.add(conversation_row(conversation))

    async def get(self, conversation_id: str) -> Conversation | None:
        async with self._sessions() as session:
            row = await session.get(ConversationRow, conversation_id)
            if row is None:
                return None
            count = await session.scalar(
                select(func.count()).where(MessageRow.conversation_id == conversation_id)
            )
            return conversation_of(row, count or 0)

    async def page(
        self, limit: int = 50, offset: int = 0, owner: str | None = None, id_prefix: str = ""
    ) -> list[Conversation]:
        counts = (
            select(MessageRow.conversation_id, func.count().label("n"))
            .where(MessageRow.conversation_id.is_not(None))
            .group_by(MessageRow.conversation_id)
            .subquery()
        )
        query = (
            select(ConversationRow, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.conversation_id == ConversationRow.id)
            .where(ConversationRow.owner == owner if owner is not None else true())
            .where(ConversationRow.id.startswith(id_prefix, autoescape=True))
            .order_by(ConversationRow.updated_at.desc(), ConversationRow.id)
            .limit(limit)
            .offset(offset)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            return [conversation_of(row, count) for row, count in rows]

    async def update(self, conversation_id: str, changes: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(**changes, updated_at=utcnow())
            )

    async def set_title_if_none(self, conversation_id: str, title: str) -> bool:
        """Give the conversation `title` unless it has one (the person's own wins)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id, ConversationRow.title.is_(None))
                .values(title=title)
            )
            return bool(getattr(result, "rowcount", 0))

    async def delete(self, conversation_id: str) -> bool:
        async with self._sessions.begin() as session:
            # Explicit, so SQLite without foreign-key enforcement would not keep orphans.
            await session.execute(
                delete(MessageRow).where(MessageRow.conversation_id == conversation_id)
            )
            await session.execute(
                delete(ReplyRow).where(ReplyRow.conversation_id == conversation_id)
            )
            result = await session.execute(
                delete(ConversationRow).where(ConversationRow.id == conversation_id)
            )
            return bool(getattr(result, "rowcount", 0))

    async def add_message(self, conversation_id: str, message: Message) -> None:
        async with self._sessions.begin() as session:
            seq = await next_seq(session, MessageRow.conversation_id, conversation_id)
            session.add(message_row(message, seq, conversation_id=conversation_id))
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(updated_at=utcnow())
            )

    async def messages(
        self, conversation_id: str, limit: int | None = None, offset: int = 0
    ) -> list[Message]:
        query = (
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.seq)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._sessions() as session:
            return [message_of(row) for row in await session.scalars(query)]

    async def last_message(self, conversation_id: str) -> Message | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(MessageRow)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.seq.desc())
                .limit(1)
            )
            return message_of(row) if row is not None else None

    async def conversation_of_message(self, message_id: str) -> str | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(MessageRow.conversation_id).where(MessageRow.id == message_id)
            )

    async def reply_target(self, conversation_id: str) -> ReplyTarget | None:
        """The conversation's owner, its latest message's id and role, and its latest
        reply's id, in one query: what joining the stream of a reply needs, without
        reading the conversation or its messages."""
        last = (
            select(MessageRow.id, MessageRow.role)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.seq.desc())
            .limit(1)
            .subquery()
        )
        latest_reply = (
            select(ReplyRow.id)
            .where(ReplyRow.conversation_id == conversation_id)
            .order_by(ReplyRow.created_at.desc(), ReplyRow.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(ConversationRow.owner, last.c.id, last.c.role, latest_reply)
            .outerjoin(last, true())
            .where(ConversationRow.id == conversation_id)
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
            return None if row is None else ReplyTarget(row[0], row[1], row[2], row[3])


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    owner: str | None
    last_message_id: str | None
    last_role: str | None
    latest_reply_id: str | None

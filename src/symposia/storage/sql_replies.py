"""Conversation replies in SQL: who may start one, who writes it, how it ended.

A conversation answers one message at a time. Each write that decides it (adding a user
message, starting a reply) first updates the conversation's row: on PostgreSQL that locks
the row until commit, on SQLite it takes the one writer lock. So those writes are
serialised per conversation however many processes make them, and what each reads next
is what the one before it committed: two requests can never both start a reply, nor a
message slip in while one starts. The primary key (one reply per question) and the
partial unique index (one `running` reply per conversation) back the rule up.

The process generating a reply holds it at `epoch` and renews its heartbeat (`renew`).
One whose heartbeat went stale lost its process; `take_over` hands it, at a new epoch,
to the process that ends it, and `finish` at an older epoch is refused (`FencedOutError`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import Message, ReplyRecord, ReplyStatus, utcnow
from symposia.errors import FencedOutError, NotFoundError, ReplyInProgressError
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.convert import message_of, message_row, reply_of, reply_row
from symposia.storage.sql_runs import next_seq
from symposia.storage.tables import ConversationRow, MessageRow, ReplyRow

RUNNING = ReplyStatus.RUNNING.value
# A literal, not a bound parameter: so the planners (SQLite's, PostgreSQL's generic plans)
# can see the query needs only what the partial index `ux_replies_one_running` holds.
IS_RUNNING = ReplyRow.status == literal_column(f"'{RUNNING}'")


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def lock_conversation(session: AsyncSession, conversation_id: str) -> None:
    """Touch the conversation's row: this transaction now holds it (see the module doc)."""
    result = await session.execute(
        update(ConversationRow)
        .where(ConversationRow.id == conversation_id)
        .values(updated_at=utcnow())
    )
    if not _rows(result):
        raise NotFoundError(f"conversation {conversation_id!r} not found")


async def refuse_if_running(session: AsyncSession, conversation_id: str) -> None:
    running = await session.scalar(
        select(ReplyRow.id).where(ReplyRow.conversation_id == conversation_id, IS_RUNNING)
    )
    if running is not None:
        raise ReplyInProgressError(conversation_id)


async def insert_message(session: AsyncSession, conversation_id: str, message: Message) -> None:
    seq = await next_seq(session, MessageRow.conversation_id, conversation_id)
    session.add(message_row(message, seq, conversation_id=conversation_id))


@cancel_safe
class SqlReplyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], instance_id: str) -> None:
        self._sessions = sessions
        self.instance_id = instance_id

    def _new(self, conversation_id: str, question_id: str, model: str) -> ReplyRecord:
        return ReplyRecord(
            question_id,
            conversation_id,
            model,
            instance_id=self.instance_id,
            heartbeat_at=utcnow(),
        )

    async def add_question(
        self, conversation_id: str, message: Message, reply_model: str | None = None
    ) -> ReplyRecord | None:
        """Add a user message, refused while a reply is being generated; with
        `reply_model`, start its reply in the same transaction (`/api/chat/stream`)."""
        try:
            async with self._sessions.begin() as session:
                await lock_conversation(session, conversation_id)
                await refuse_if_running(session, conversation_id)
                await insert_message(session, conversation_id, message)
                if reply_model is None:
                    return None
                reply = self._new(conversation_id, message.id, reply_model)
                session.add(reply_row(reply))
                await session.flush()
                return reply
        except IntegrityError:  # the unique index, if the lock were ever bypassed
            raise ReplyInProgressError(conversation_id) from None

    async def begin(
        self, conversation_id: str, question_id: str, model: str
    ) -> tuple[ReplyRecord, bool] | None:
        """Start the reply to `question_id` for this process: (it, True). When it was
        started already: (that one, False), to join. None when the question is not the
        conversation's last message (it was answered, or another came after it)."""
        for attempt in range(2):
            try:
                return await self._begin(conversation_id, question_id, model)
            except IntegrityError:  # the indexes, if the lock were ever bypassed: look again
                if attempt:
                    raise ReplyInProgressError(conversation_id) from None
        raise AssertionError("unreachable")

    async def _begin(
        self, conversation_id: str, question_id: str, model: str
    ) -> tuple[ReplyRecord, bool] | None:
        async with self._sessions.begin() as session:
            await lock_conversation(session, conversation_id)
            existing = await session.scalar(select(ReplyRow).where(ReplyRow.id == question_id))
            if existing is not None:
                return reply_of(existing), False
            last = (
                await session.execute(
                    select(MessageRow.id, MessageRow.role)
                    .where(MessageRow.conversation_id == conversation_id)
                    .order_by(MessageRow.seq.desc())
                    .limit(1)
                )
            ).first()
            if last is None or last.id != question_id or last.role not in ("user", "tool"):
                return None
            await refuse_if_running(session, conversation_id)
            reply = self._new(conversation_id, question_id, model)
            session.add(reply_row(reply))
            await session.flush()
            return reply, True

    async def get(self, reply_id: str) -> ReplyRecord | None:
        """The reply with its saved message, if any."""
        async with self._sessions() as session:
            row = await session.scalar(select(ReplyRow).where(ReplyRow.id == reply_id))
            if row is None:
                return None
            message = None
            if row.message_id is not None:
                found = await session.scalar(
                    select(MessageRow).where(MessageRow.id == row.message_id)
                )
                message = message_of(found) if found is not None else None
            return reply_of(row, message)

    async def route(self, reply: ReplyRecord, routing: dict[str, Any], model: str) -> None:
        """Record a panel's routing of the question and the model that will answer, as the
        reply's writer at `reply.epoch`, before the `routing` event is sent: a stream
        rebuilt from storage shows the same routing. `FencedOutError` when not held."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ReplyRow)
                .where(ReplyRow.id == reply.id, ReplyRow.epoch == reply.epoch, IS_RUNNING)
                .values(routing=routing, model=model)
            )
            if not _rows(result):
                raise FencedOutError(f"reply {reply.id} is no longer held at {reply.epoch}")
        reply.routing, reply.model = routing, model

    async def finish(
        self,
        reply: ReplyRecord,
        status: ReplyStatus,
        *,
        message: Message | None = None,
        error: dict[str, Any] | None = None,
        error_event: int | None = None,
        done_event: int | None = None,
    ) -> bool:
        """Record how the reply ended and save its message, in one transaction, as its
        writer at `reply.epoch`. False when the reply is gone (its conversation was
        deleted): nothing is written. `FencedOutError` when another process holds it."""
        values: dict[str, Any] = {
            "status": status.value,
            "message_id": message.id if message is not None else None,
            "error": error,
            "error_event": error_event,
            "done_event": done_event,
            "finished_at": utcnow(),
        }
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ReplyRow)
                .where(
                    ReplyRow.id == reply.id,
                    ReplyRow.epoch == reply.epoch,
                    IS_RUNNING,
                )
                .values(**values)
            )
            if not _rows(result):
                held = await session.scalar(select(ReplyRow.epoch).where(ReplyRow.id == reply.id))
                if held is None:
                    return False
                raise FencedOutError(
                    f"reply {reply.id} is held at epoch {held} or ended, not at {reply.epoch}"
                )
            if message is not None:
                await lock_conversation(session, reply.conversation_id)
                await insert_message(session, reply.conversation_id, message)
            return True

    async def renew(self, reply_ids: list[str]) -> set[str]:
        """Renew the heartbeat of these replies this process writes; the ones it no longer
        holds (deleted, or taken over) are left out of the answer."""
        if not reply_ids:
            return set()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ReplyRow)
                .where(
                    ReplyRow.id.in_(reply_ids),
                    ReplyRow.instance_id == self.instance_id,
                    IS_RUNNING,
                )
                .values(heartbeat_at=utcnow())
                .returning(ReplyRow.id)
            )
            return set(result.scalars())

    async def stale(self, stale_after: float) -> list[ReplyRecord]:
        """Running replies whose heartbeat is older than `stale_after` seconds: their
        process died (or stopped renewing them)."""
        before = utcnow() - timedelta(seconds=stale_after)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ReplyRow).where(IS_RUNNING, ReplyRow.heartbeat_at < before)
            )
            return [reply_of(row) for row in rows]

    async def take_over(self, reply_id: str, stale_after: float) -> ReplyRecord | None:
        """Hold a reply whose heartbeat is stale, at a new epoch (fencing its writer out);
        None when it is not stale any more, or another process took it first."""
        before = utcnow() - timedelta(seconds=stale_after)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ReplyRow)
                .where(
                    ReplyRow.id == reply_id,
                    IS_RUNNING,
                    ReplyRow.heartbeat_at < before,
                )
                .values(
                    epoch=ReplyRow.epoch + 1, instance_id=self.instance_id, heartbeat_at=utcnow()
                )
            )
            if not _rows(result):
                return None
            row = await session.scalar(select(ReplyRow).where(ReplyRow.id == reply_id))
            assert row is not None
            return reply_of(row)

    async def running_of(self, conversation_id: str) -> ReplyRecord | None:
        """The reply of the conversation being generated now, by any process."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(ReplyRow).where(ReplyRow.conversation_id == conversation_id, IS_RUNNING)
            )
            return reply_of(row) if row is not None else None

    async def request_stop(self, reply_id: str) -> bool:
        """Ask the process writing the reply to stop it (it polls: `stops_requested`);
        False when the reply is not running any more."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ReplyRow)
                .where(ReplyRow.id == reply_id, IS_RUNNING)
                .values(stop_requested=True)
            )
            return bool(_rows(result))

    async def stops_requested(self, reply_ids: list[str]) -> set[str]:
        """Which of these running replies someone asked to stop."""
        if not reply_ids:
            return set()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ReplyRow.id).where(
                    ReplyRow.id.in_(reply_ids), IS_RUNNING, ReplyRow.stop_requested.is_(True)
                )
            )
            return set(rows)

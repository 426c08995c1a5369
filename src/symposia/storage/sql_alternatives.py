"""A chat's last answer asked again, the earlier answers kept as alternatives.

Regenerating the last exchange (a question and its answer) puts the question back as a new
message, which carries the answers it had (`alternatives`), so its reply is a fresh one
with its own stream; choosing an alternative swaps it with the answer shown. Both are
refused while a reply is being generated, and only the last exchange can change: what
came after an answer was said to it.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import Message
from symposia.errors import ConflictError, NotFoundError
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.convert import message_of, message_of_dict, message_row
from symposia.storage.sql_replies import insert_message, lock_conversation, refuse_if_running
from symposia.storage.tables import MessageRow

NOT_AN_EXCHANGE = (
    "the conversation does not end with a question and its answer (nor a question left "
    "unanswered): there is nothing to regenerate"
)


async def _last_exchange(
    session: AsyncSession, conversation_id: str
) -> tuple[MessageRow, MessageRow | None]:
    """The last question, and its answer when it has one."""
    rows = list(
        await session.scalars(
            select(MessageRow)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.seq.desc())
            .limit(2)
        )
    )
    if rows and rows[0].role == "user":
        return rows[0], None
    answered = len(rows) == 2 and rows[0].role == "assistant" and rows[1].role == "user"
    if answered and not rows[0].tool_calls:
        return rows[1], rows[0]
    raise ConflictError(NOT_AN_EXCHANGE)


@cancel_safe
class SqlAlternatives:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def regenerate(self, conversation_id: str, model: str | None) -> Message:
        """Put the last question back as a new message carrying its answers so far; its
        reply is then generated as any question's (by `model`, else as first asked)."""
        async with self._sessions.begin() as session:
            await lock_conversation(session, conversation_id)
            await refuse_if_running(session, conversation_id)
            question_row, answer_row = await _last_exchange(session, conversation_id)
            question = message_of(question_row)
            kept = list(question.alternatives or [])
            if answer_row is not None:
                kept.append(message_of(answer_row).to_dict())
                await session.delete(answer_row)
            await session.delete(question_row)
            await session.flush()
            again = Message(
                role="user",
                author=question.author,
                content=question.content,
                model=model or question.model,
                alternatives=kept or None,
            )
            await insert_message(session, conversation_id, again)
            return again

    async def choose(self, conversation_id: str, answer_id: str) -> Message:
        """Show the stored alternative `answer_id` as the last question's answer; the one
        shown until now becomes an alternative. The answer now shown."""
        async with self._sessions.begin() as session:
            await lock_conversation(session, conversation_id)
            await refuse_if_running(session, conversation_id)
            question_row, answer_row = await _last_exchange(session, conversation_id)
            kept = list(question_row.alternatives or [])
            chosen = next((a for a in kept if a.get("id") == answer_id), None)
            if chosen is None:
                raise NotFoundError(
                    f"message {answer_id!r} is not an alternative answer of the last question"
                )
            kept.remove(chosen)
            if answer_row is not None:
                kept.append(message_of(answer_row).to_dict())
                await session.execute(delete(MessageRow).where(MessageRow.id == answer_row.id))
            question_row.alternatives = kept or None
            answer = message_of_dict(chosen)
            seq = question_row.seq + 1
            session.add(message_row(answer, seq, conversation_id=conversation_id))
            return answer

"""Turn records in SQL: a run's bot turns, each written before its first model call.

Every write here is part of a write of the run's owner, checked against its lease epoch in
the same transaction (`SqlRunRepository`): a turn is claimed, started and closed only by
the process that holds the run, and closed in the transaction that saves its message, so a
record is open exactly while its turn has no message.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from symposia.domain.models import Message, MessageStatus, TurnRecord, TurnState
from symposia.storage.tables import RunTurnRow

OPEN = (TurnState.CLAIMED.value, TurnState.STREAMING.value)


def record_of(row: RunTurnRow) -> TurnRecord:
    return TurnRecord(
        turn=row.turn,
        bot=row.bot_index,
        model=row.model,
        epoch=row.epoch,
        round=row.round,
        state=TurnState(row.state),
        start_event=row.start_event,
        complete_event=row.complete_event,
        prompt_chars=row.prompt_chars,
    )


def claim(session: AsyncSession, run_id: str, records: Sequence[TurnRecord]) -> None:
    """Add the records (`claimed`, or already `streaming`). A turn number claimed before
    is refused by the primary key: the transaction fails rather than let one turn be
    generated twice."""
    session.add_all(
        RunTurnRow(
            run_id=run_id,
            turn=record.turn,
            round=record.round,
            bot_index=record.bot,
            model=record.model,
            epoch=record.epoch,
            state=record.state.value,
            start_event=record.start_event,
            prompt_chars=record.prompt_chars,
        )
        for record in records
    )


async def start(session: AsyncSession, run_id: str, record: TurnRecord) -> None:
    """A claimed turn is `streaming`: its `turn_start` id and prompt size."""
    await session.execute(
        update(RunTurnRow)
        .where(RunTurnRow.run_id == run_id, RunTurnRow.turn == record.turn)
        .values(
            state=TurnState.STREAMING.value,
            start_event=record.start_event,
            prompt_chars=record.prompt_chars,
        )
    )


async def close(session: AsyncSession, run_id: str, message: Message) -> None:
    """Close the turn `message` ends (a bot's turn: a person's has no record)."""
    if message.role != "assistant" or message.turn is None:
        return
    complete = message.status is MessageStatus.COMPLETE
    state = TurnState.COMPLETE if complete else TurnState.PARTIAL
    await session.execute(
        update(RunTurnRow)
        .where(RunTurnRow.run_id == run_id, RunTurnRow.turn == message.turn)
        .values(state=state.value, complete_event=message.complete_event)
    )


async def records(session: AsyncSession, run_id: str, open_only: bool) -> list[TurnRecord]:
    statement = select(RunTurnRow).where(RunTurnRow.run_id == run_id)
    if open_only:
        statement = statement.where(RunTurnRow.state.in_(OPEN))
    rows = await session.scalars(statement.order_by(RunTurnRow.turn))
    return [record_of(row) for row in rows]

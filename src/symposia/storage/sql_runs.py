"""Runs, their bots (with edit history) and transcripts in SQL.

Each server process is an instance with an id. A run records the instance that runs it
and a heartbeat that instance renews (`heartbeat`), so a second server on the same
database can tell a run whose process died (`mark_interrupted`) from a live one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import BotConfig, Message, Run, RunStatus, utcnow
from symposia.storage.convert import bot_of, bot_row, message_of, message_row, run_of, run_row
from symposia.storage.tables import MessageRow, RunBotEditRow, RunBotRow, RunRow

UNFINISHED = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


async def next_seq(session: AsyncSession, column: Any, parent_id: str) -> int:
    current = await session.scalar(select(func.max(MessageRow.seq)).where(column == parent_id))
    return 0 if current is None else current + 1


class SqlRunRepository:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], instance_id: str | None = None
    ) -> None:
        self._sessions = sessions
        self.instance_id = instance_id or uuid.uuid4().hex

    async def add(self, run: Run) -> None:
        async with self._sessions.begin() as session:
            row = run_row(run)
            row.instance_id, row.heartbeat_at = self.instance_id, utcnow()
            session.add(row)
            await session.flush()
            session.add_all(bot_row(run.id, i, bot) for i, bot in enumerate(run.bots))
            await session.flush()
            for seq, message in enumerate(run.messages):
                session.add(message_row(message, seq, run_id=run.id))

    async def get(self, run_id: str) -> Run | None:
        async with self._sessions() as session:
            row = await session.get(RunRow, run_id)
            if row is None:
                return None
            bots = await session.scalars(
                select(RunBotRow).where(RunBotRow.run_id == run_id).order_by(RunBotRow.position)
            )
            messages = await session.scalars(
                select(MessageRow).where(MessageRow.run_id == run_id).order_by(MessageRow.seq)
            )
            return run_of(row, [bot_of(b) for b in bots], [message_of(m) for m in messages])

    async def page(self, limit: int = 50, offset: int = 0, owner: str | None = None) -> list[Run]:
        """Newest first; bots included, transcripts not (use `get` for those)."""
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(RunRow)
                    .where(RunRow.owner == owner if owner is not None else true())
                    .order_by(RunRow.created_at.desc(), RunRow.id)
                    .limit(limit)
                    .offset(offset)
                )
            )
            ids = [row.id for row in rows]
            bots: dict[str, list[BotConfig]] = {run_id: [] for run_id in ids}
            for bot in await session.scalars(
                select(RunBotRow).where(RunBotRow.run_id.in_(ids)).order_by(RunBotRow.position)
            ):
                bots[bot.run_id].append(bot_of(bot))
            counts = dict(
                (
                    await session.execute(
                        select(MessageRow.run_id, func.count())
                        .where(MessageRow.run_id.in_(ids))
                        .where(MessageRow.bot_index.is_not(None))
                        .group_by(MessageRow.run_id)
                    )
                ).all()
            )
            runs = []
            for row in rows:
                run = run_of(row, bots[row.id], [])
                run.counted_turns = counts.get(row.id, 0)
                runs.append(run)
            return runs

    async def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: dict[str, Any] | None = None,
        error_message: str | None = None,
        stop_reason: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value}
        now = utcnow()
        if status is RunStatus.RUNNING:
            values["started_at"] = func.coalesce(RunRow.started_at, now)
            values["instance_id"], values["heartbeat_at"] = self.instance_id, now
        if status.finished:
            values["finished_at"] = now
        for key, value in (
            ("error", error),
            ("error_message", error_message),
            ("stop_reason", stop_reason),
        ):
            if value is not None:
                values[key] = value
        async with self._sessions.begin() as session:
            await session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    async def set_done_event(self, run_id: str, seq: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(RunRow).where(RunRow.id == run_id).values(done_event=seq))

    async def update_bot(self, run_id: str, index: int, bot: BotConfig) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(RunBotRow, (run_id, index))
            assert row is not None
            changes = {
                key: value
                for key, value in bot.to_dict().items()
                if key != "fallbacks" and getattr(row, key) != value
            }
            fresh = bot_row(run_id, index, bot)
            for key in ("name", "model", "system_prompt", "temperature", "max_tokens", "fallbacks"):
                setattr(row, key, getattr(fresh, key))
            session.add(
                RunBotEditRow(run_id=run_id, position=index, changes=changes, created_at=utcnow())
            )

    async def add_message(self, run_id: str, message: Message) -> None:
        async with self._sessions.begin() as session:
            seq = await next_seq(session, MessageRow.run_id, run_id)
            session.add(message_row(message, seq, run_id=run_id))

    async def bot_edits(self, run_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(RunBotEditRow)
                .where(RunBotEditRow.run_id == run_id)
                .order_by(RunBotEditRow.id)
            )
            return [
                {"bot": r.position, "changes": r.changes, "at": r.created_at.isoformat()}
                for r in rows
            ]

    async def heartbeat(self) -> int:
        """Say this instance is alive: one UPDATE for all its unfinished runs."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(RunRow.instance_id == self.instance_id, RunRow.status.in_(UNFINISHED))
                .values(heartbeat_at=utcnow())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def mark_interrupted(self, stale_after: float) -> int:
        """Runs left `pending` or `running` by a process that died: another instance's runs
        whose heartbeat is older than `stale_after` seconds (or absent). Returns how many."""
        stale = utcnow() - timedelta(seconds=stale_after)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(RunRow.status.in_(UNFINISHED))
                .where(or_(RunRow.instance_id.is_(None), RunRow.instance_id != self.instance_id))
                .where(or_(RunRow.heartbeat_at.is_(None), RunRow.heartbeat_at < stale))
                .values(
                    status=RunStatus.INTERRUPTED.value,
                    finished_at=utcnow(),
                    stop_reason="the server stopped while the run was going on",
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def owner_of(self, run_id: str) -> tuple[str | None, RunStatus] | None:
        """(owner, status) of the run, or None if there is none: one small query, for the
        checks that must not read a whole transcript (a thousand viewers joining)."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(RunRow.owner, RunRow.status).where(RunRow.id == run_id)
                )
            ).first()
            return None if row is None else (row.owner, RunStatus(row.status))

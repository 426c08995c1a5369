"""Runs, their bots (with edit history) and transcripts in SQL.

Each server process is an instance with an id. A run records the instance that runs it
and a heartbeat that instance renews (`heartbeat`), so a second server on the same
database can tell a run whose process died (`mark_interrupted`) from a live one.

The process that generates a run holds its lease: `claim` bumps the run's `lease_epoch`
(the fencing token) and the writes of that run (`add_message`, `set_status`,
`set_done_event`) given an epoch are refused with `FencedOutError` once the stored epoch
differs, so an owner that paused while another claimed the run can never write after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import (
    BotConfig,
    BotEdit,
    Message,
    Run,
    RunStatus,
    TurnRecord,
    utcnow,
)
from symposia.errors import FencedOutError
from symposia.storage import sql_turns
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.convert import (
    aware,
    bot_config,
    bot_of,
    bot_row,
    message_of,
    message_row,
    run_of,
    run_row,
)
from symposia.storage.tables import MessageRow, RunBotEditRow, RunBotRow, RunRow

UNFINISHED = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
LIVE = (*UNFINISHED, RunStatus.AWAITING_INPUT.value)  # a person may still speak in


async def next_seq(session: AsyncSession, column: Any, parent_id: str) -> int:
    current = await session.scalar(select(func.max(MessageRow.seq)).where(column == parent_id))
    return 0 if current is None else current + 1


def _edit_of(row: RunBotEditRow) -> BotEdit:
    at = aware(row.created_at) or utcnow()
    return BotEdit(row.id, row.position, row.changes, at, row.event, row.turn)


def _owned_by(owner: str | None) -> Any:
    return RunRow.owner.is_(None) if owner is None else RunRow.owner == owner


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _check_fence(session: AsyncSession, run_id: str, epoch: int) -> None:
    """After a write at `epoch` matched no row: fenced out if the run is there at another
    epoch. A run that is gone is not a lost lease; the write fails (or not) as without one."""
    current = await session.scalar(select(RunRow.lease_epoch).where(RunRow.id == run_id))
    if current is not None:
        raise FencedOutError(f"run {run_id} is held at lease epoch {current}, not {epoch}")


async def _hold(session: AsyncSession, run_id: str, epoch: int, **values: Any) -> None:
    """Check the lease in a write's transaction: an UPDATE of the run row at `epoch` (a no-op
    one without `values`), which also locks the row, so a claim waits for this write."""
    held = await session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.lease_epoch == epoch)
        .values(lease_epoch=epoch, **values)
    )
    if not _rows(held):
        await _check_fence(session, run_id, epoch)


@cancel_safe
class SqlRunRepository:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], instance_id: str | None = None
    ) -> None:
        self._sessions = sessions
        self.instance_id = instance_id or uuid.uuid4().hex

    async def add(self, run: Run) -> None:
        async with self._sessions.begin() as session:
            await self._insert(session, run)

    async def add_within(
        self,
        run: Run,
        limit: int,
        lease_seconds: float,
        before_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> int | None:
        """Add the run unless its owner already has `limit` live runs (unfinished, lease
        fresh: a run nobody generates does not hold a place); then return how many they
        have. The count and the insert are one transaction, serialised per owner on
        PostgreSQL, so workers on one database hold the limit together. `before_commit`
        (the run's event stream being made) runs inside it: if it fails, nothing is stored."""
        async with self._sessions.begin() as session:
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                await session.execute(
                    select(func.pg_advisory_xact_lock(func.hashtext(f"runs:{run.owner}")))
                )
            fresh = utcnow() - timedelta(seconds=lease_seconds)
            running = await session.scalar(
                select(func.count())
                .select_from(RunRow)
                .where(
                    _owned_by(run.owner),
                    RunRow.status.in_(UNFINISHED),
                    RunRow.heartbeat_at >= fresh,
                )
            )
            if running is not None and running >= limit:
                return int(running)
            await self._insert(session, run)
            await session.flush()
            if before_commit is not None:
                await before_commit()
            return None

    async def _insert(self, session: AsyncSession, run: Run) -> None:
        """The run, its bots, its messages (a branch starts with some) and its bots' edits
        (an imported run has some), held here."""
        row = run_row(run)
        row.instance_id, row.heartbeat_at = self.instance_id, utcnow()
        session.add(row)
        await session.flush()
        starts = run.start_bots if run.start_bots is not None else run.bots
        session.add_all(
            bot_row(run.id, i, bot, starts[i] if i < len(starts) else bot)
            for i, bot in enumerate(run.bots)
        )
        await session.flush()
        for seq, message in enumerate(run.messages):
            session.add(message_row(message, seq, run_id=run.id))
        session.add_all(
            RunBotEditRow(
                run_id=run.id,
                position=edit.bot,
                changes=edit.changes,
                created_at=edit.at,
                event=edit.event,
                turn=edit.turn,
            )
            for edit in run.edits
        )

    async def get(self, run_id: str) -> Run | None:
        async with self._sessions() as session:
            row = await session.get(RunRow, run_id)
            if row is None:
                return None
            bots = list(
                await session.scalars(
                    select(RunBotRow).where(RunBotRow.run_id == run_id).order_by(RunBotRow.position)
                )
            )
            messages = await session.scalars(
                select(MessageRow).where(MessageRow.run_id == run_id).order_by(MessageRow.seq)
            )
            run = run_of(row, [bot_of(b) for b in bots], [message_of(m) for m in messages])
            if all(b.start is not None for b in bots):
                run.start_bots = [bot_config(b.start) for b in bots if b.start is not None]
            edits = await session.scalars(
                select(RunBotEditRow)
                .where(RunBotEditRow.run_id == run_id)
                .order_by(RunBotEditRow.id)
            )
            run.edits = [
                BotEdit(
                    e.id, e.position, e.changes, aware(e.created_at) or utcnow(), e.event, e.turn
                )
                for e in edits
            ]
            return run

    async def page(
        self, limit: int = 50, offset: int = 0, owner: str | None = None, id_prefix: str = ""
    ) -> list[Run]:
        """Newest first; bots included, transcripts not (use `get` for those); only the ids
        starting with `id_prefix` when given."""
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(RunRow)
                    .where(RunRow.owner == owner if owner is not None else true())
                    .where(RunRow.id.startswith(id_prefix, autoescape=True))
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
        epoch: int | None = None,
        ended_by: str | None = None,
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
            ("ended_by", ended_by),
        ):
            if value is not None:
                values[key] = value
        await self._update(run_id, epoch, **values)

    async def set_done_event(self, run_id: str, seq: int, epoch: int | None = None) -> None:
        await self._update(run_id, epoch, done_event=seq)

    async def _update(self, run_id: str, epoch: int | None, **values: Any) -> None:
        """One UPDATE of the run; with `epoch`, only while the run is still held at it."""
        statement = update(RunRow).where(RunRow.id == run_id)
        if epoch is not None:
            statement = statement.where(RunRow.lease_epoch == epoch)
        async with self._sessions.begin() as session:
            result = await session.execute(statement.values(**values))
            if epoch is not None and not _rows(result):
                await _check_fence(session, run_id, epoch)

    async def claim(self, run_id: str) -> int:
        """Take the run's lease for this instance: bump its epoch (fencing out any earlier
        holder) in one UPDATE, and return the new epoch, read in the same transaction. A
        run that ended meanwhile (stopped before it began) is not claimed: LookupError."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.in_(UNFINISHED))
                .values(
                    lease_epoch=RunRow.lease_epoch + 1,
                    instance_id=self.instance_id,
                    heartbeat_at=utcnow(),
                )
            )
            if not _rows(result):
                raise LookupError(f"no run {run_id}")
            epoch = await session.scalar(select(RunRow.lease_epoch).where(RunRow.id == run_id))
            assert epoch is not None
            return int(epoch)

    def _expired(self, lease_seconds: float) -> list[Any]:
        """Unfinished runs whose lease lapsed or was released: their process died, handed
        them over, or (this one) lost the task that generated them."""
        stale = utcnow() - timedelta(seconds=lease_seconds)
        return [
            RunRow.status.in_(UNFINISHED),
            or_(RunRow.heartbeat_at.is_(None), RunRow.heartbeat_at < stale),
        ]

    async def expired(self, lease_seconds: float, limit: int = 100) -> list[tuple[str, int]]:
        """(run id, lease epoch) of runs whose lease expired, oldest first."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(RunRow.id, RunRow.lease_epoch)
                .where(*self._expired(lease_seconds))
                .order_by(RunRow.created_at)
                .limit(limit)
            )
            return [(row.id, int(row.lease_epoch)) for row in rows]

    async def take_over(
        self, run_id: str, seen_epoch: int, lease_seconds: float, *, mine: bool = False
    ) -> tuple[int, int] | None:
        """Claim a run whose lease expired, if it is still at `seen_epoch` and still expired:
        of several processes trying at once, one wins. Returns (new epoch, takeovers so far).
        With `mine`, a live lease held by this instance counts as expired too (the caller
        knows no task of its own generates the run)."""
        lapsed = self._expired(lease_seconds)
        if mine:
            lapsed = [lapsed[0], or_(lapsed[1], RunRow.instance_id == self.instance_id)]
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.lease_epoch == seen_epoch)
                .where(*lapsed)
                .values(
                    lease_epoch=seen_epoch + 1,
                    instance_id=self.instance_id,
                    heartbeat_at=utcnow(),
                    takeovers=RunRow.takeovers + 1,
                )
            )
            if not _rows(result):
                return None
            takeovers = await session.scalar(select(RunRow.takeovers).where(RunRow.id == run_id))
            return seen_epoch + 1, int(takeovers or 0)

    async def release(self, run_id: str, epoch: int, last_event: int | None) -> None:
        """Give the lease up (a process leaving): any other may take the run at once."""
        await self._update(
            run_id, epoch, instance_id=None, heartbeat_at=None, last_event=last_event
        )

    async def claim_turns(self, run_id: str, records: Sequence[TurnRecord], epoch: int) -> None:
        """Record turns about to be generated (all of a round at once), as the run's owner."""
        async with self._sessions.begin() as session:
            await _hold(session, run_id, epoch)
            sql_turns.claim(session, run_id, records)

    async def start_turn(self, run_id: str, record: TurnRecord, claimed: bool) -> None:
        """A turn is about to write its `turn_start` (id `record.start_event`): its record
        says so (inserted now, claimed and started at once, unless `claimed` before with
        the rest of its round), and the run keeps it as its open turn (the ids a lost log
        may have used start there)."""
        async with self._sessions.begin() as session:
            await _hold(
                session,
                run_id,
                record.epoch,
                open_turn_event=record.start_event,
                open_turn_bot=record.bot,
            )
            if claimed:
                await sql_turns.start(session, run_id, record)
            else:
                sql_turns.claim(session, run_id, [record])

    async def turn_records(self, run_id: str, open_only: bool = False) -> list[TurnRecord]:
        """The run's turn records by turn number (`open_only`: those claimed or streaming)."""
        async with self._sessions() as session:
            return await sql_turns.records(session, run_id, open_only)

    async def set_policy_state(self, run_id: str, state: dict[str, Any], epoch: int) -> None:
        await self._update(run_id, epoch, policy_state=state)

    async def request_stop(self, run_id: str, reason: str) -> bool:
        """Ask the run's owner, wherever it is, to stop it; False if it is finished."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.in_(LIVE))
                .values(stop_requested=func.coalesce(RunRow.stop_requested, reason))
            )
            return bool(_rows(result))

    async def stops_requested(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The stops asked of these runs (this process's live ones): one small query."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(RunRow.id, RunRow.stop_requested).where(
                    RunRow.id.in_(list(run_ids)), RunRow.stop_requested.is_not(None)
                )
            )
            return {row.id: str(row.stop_requested) for row in rows}

    async def branches(self, run_id: str) -> list[tuple[str, int | None]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(RunRow.id, RunRow.branch_turn)
                .where(RunRow.parent_id == run_id)
                .order_by(RunRow.created_at, RunRow.id)
            )
            return [(row.id, row.branch_turn) for row in rows]

    async def lease_of(self, run_id: str) -> tuple[int, RunStatus] | None:
        """(lease epoch, status) of the run, or None if there is none."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(RunRow.lease_epoch, RunRow.status).where(RunRow.id == run_id)
                )
            ).first()
            return None if row is None else (int(row.lease_epoch), RunStatus(row.status))

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

    async def add_message(self, run_id: str, message: Message, epoch: int | None = None) -> None:
        async with self._sessions.begin() as session:
            if epoch is not None:
                await _hold(session, run_id, epoch)
            seq = await next_seq(session, MessageRow.run_id, run_id)
            session.add(message_row(message, seq, run_id=run_id))
            await sql_turns.close(session, run_id, message)  # with its message, never apart

    async def add_said(self, run_id: str, message: Message) -> bool:
        """Add a person's message to an unfinished run (False: it is finished). The run's
        row is written first, so this and its owner's messages are numbered one at a time."""
        async with self._sessions.begin() as session:
            held = await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.in_(LIVE))
                .values(lease_epoch=RunRow.lease_epoch)
            )
            if not _rows(held):
                return False
            seq = await next_seq(session, MessageRow.run_id, run_id)
            session.add(message_row(message, seq, run_id=run_id))
            return True

    async def wait_for(self, run_id: str, agent: int, until: datetime, epoch: int) -> None:
        """The run waits for a person: `awaiting_input` until `until`, its lease released
        (a waiting run holds no lease: no process renews it, none takes it over)."""
        await self._update(
            run_id,
            epoch,
            status=RunStatus.AWAITING_INPUT.value,
            awaiting_until=until,
            open_turn_bot=agent,
            instance_id=None,
            heartbeat_at=None,
        )

    async def wake(
        self, run_id: str, message: Message | None = None, *, timed_out: bool = False
    ) -> int | None:
        """End a run's wait and claim it for this process, with `message` (the person's
        turn) stored in the same transaction; only while it waits (and, with `timed_out`,
        only once its wait is over). Of several processes, one wins: its new epoch."""
        async with self._sessions.begin() as session:
            statement = update(RunRow).where(
                RunRow.id == run_id, RunRow.status == RunStatus.AWAITING_INPUT.value
            )
            if timed_out:
                statement = statement.where(RunRow.awaiting_until <= utcnow())
            result = await session.execute(
                statement.values(
                    status=RunStatus.RUNNING.value,
                    awaiting_until=None,
                    lease_epoch=RunRow.lease_epoch + 1,
                    instance_id=self.instance_id,
                    heartbeat_at=utcnow(),
                )
            )
            if not _rows(result):
                return None
            if message is not None:
                seq = await next_seq(session, MessageRow.run_id, run_id)
                session.add(message_row(message, seq, run_id=run_id))
            epoch = await session.scalar(select(RunRow.lease_epoch).where(RunRow.id == run_id))
            return int(epoch or 0)

    async def waits_over(self, limit: int = 100) -> list[str]:
        """Runs whose wait for a person has timed out."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(RunRow.id)
                .where(
                    RunRow.status == RunStatus.AWAITING_INPUT.value,
                    RunRow.awaiting_until <= utcnow(),
                )
                .limit(limit)
            )
            return list(rows)

    async def set_said_event(
        self, run_id: str, message_id: str, seq: int, turn: int, epoch: int
    ) -> None:
        """Record the id of the event that streamed a person's message, and the turn that
        first sees it, as its owner."""
        async with self._sessions.begin() as session:
            await _hold(session, run_id, epoch)
            await session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(start_event=seq, complete_event=seq, turn=turn)
            )

    async def set_edit_event(
        self, run_id: str, edit_id: int, seq: int, turn: int, epoch: int
    ) -> None:
        """Record the `bot_updated` event that announced an edit, as the run's owner."""
        async with self._sessions.begin() as session:
            await _hold(session, run_id, epoch)
            await session.execute(
                update(RunBotEditRow)
                .where(RunBotEditRow.id == edit_id)
                .values(event=seq, turn=turn)
            )

    async def heartbeat(self, run_ids: Sequence[str]) -> int:
        """Renew this instance's leases of `run_ids` (the runs it has a task for): one UPDATE.
        A claim sets `instance_id` with the epoch it bumps, so a run another instance took
        since is not renewed; a run whose task is gone here is not either, so its lease
        lapses and the run is taken over (by this instance too, if it is the one left)."""
        if not run_ids:
            return 0
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(RunRow.id.in_(list(run_ids)))
                .where(RunRow.instance_id == self.instance_id, RunRow.status.in_(UNFINISHED))
                .values(heartbeat_at=utcnow())
            )
            return _rows(result)

    async def mark_interrupted(self, stale_after: float) -> int:
        """Runs left `pending` or `running` by a process that died, when they are not to be
        resumed (RUN_RESUME=false): those whose lease expired. Returns how many."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(RunRow)
                .where(*self._expired(stale_after))
                .values(
                    lease_epoch=RunRow.lease_epoch + 1,  # fences out an owner not quite dead
                    status=RunStatus.INTERRUPTED.value,
                    finished_at=utcnow(),
                    stop_reason="the server stopped while the run was going on",
                )
            )
            return _rows(result)

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

    async def delete(self, run_id: str) -> bool:
        async with self._sessions.begin() as session:
            # Explicit, so SQLite without foreign-key enforcement would not keep orphans.
            for table in (MessageRow, RunBotEditRow, RunBotRow):
                await session.execute(delete(table).where(table.run_id == run_id))
            result = await session.execute(delete(RunRow).where(RunRow.id == run_id))
            return _rows(result) > 0

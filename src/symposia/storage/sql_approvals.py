"""Tool calls waiting for a person's approval, in SQL: the pending call is stored before it
is announced, and a decision is taken once (the first `decide` of a pending row wins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import utcnow
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.tables import ToolApprovalRow

PENDING, APPROVED, DENIED = "pending", "approved", "denied"


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    subject: str
    call_id: str
    stream_id: str
    agent: str
    server: str
    tool: str
    arguments: str
    status: str
    until: datetime
    decided_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "name": self.agent,
            "server": self.server,
            "tool": self.tool,
            "arguments": self.arguments,
            "status": self.status,
            "until": self.until.isoformat(),
            "decided_by": self.decided_by,
        }


def _record(row: ToolApprovalRow) -> ApprovalRecord:
    until = row.until if row.until.tzinfo else row.until.replace(tzinfo=utcnow().tzinfo)
    return ApprovalRecord(
        row.subject,
        row.call_id,
        row.stream_id,
        row.agent,
        row.server,
        row.tool,
        row.arguments,
        row.status,
        until,
        row.decided_by,
    )


@cancel_safe
class SqlApprovals:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, record: ApprovalRecord) -> None:
        async with self._sessions.begin() as session:
            session.add(
                ToolApprovalRow(
                    subject=record.subject,
                    call_id=record.call_id,
                    stream_id=record.stream_id,
                    agent=record.agent,
                    server=record.server,
                    tool=record.tool,
                    arguments=record.arguments,
                    status=PENDING,
                    created_at=utcnow(),
                    until=record.until,
                )
            )

    async def get(self, subject: str, call_id: str) -> ApprovalRecord | None:
        async with self._sessions() as session:
            row = await session.get(ToolApprovalRow, (subject, call_id))
            return None if row is None else _record(row)

    async def pending(self, subject: str) -> list[ApprovalRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ToolApprovalRow)
                .where(ToolApprovalRow.subject == subject, ToolApprovalRow.status == PENDING)
                .order_by(ToolApprovalRow.created_at)
            )
            return [_record(row) for row in rows]

    async def decide(self, subject: str, call_id: str, approved: bool, by: str) -> bool:
        """Take the decision; False when the call was not pending (decided, or unknown)."""
        async with self._sessions.begin() as session:
            done = await session.execute(
                update(ToolApprovalRow)
                .where(
                    ToolApprovalRow.subject == subject,
                    ToolApprovalRow.call_id == call_id,
                    ToolApprovalRow.status == PENDING,
                )
                .values(status=APPROVED if approved else DENIED, decided_at=utcnow(), decided_by=by)
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    async def expire(self, subject: str, by: str) -> int:
        """Deny every call of `subject` still pending (its run ended): none waits forever."""
        async with self._sessions.begin() as session:
            done = await session.execute(
                update(ToolApprovalRow)
                .where(ToolApprovalRow.subject == subject, ToolApprovalRow.status == PENDING)
                .values(status=DENIED, decided_at=utcnow(), decided_by=by)
            )
            return int(done.rowcount)  # type: ignore[attr-defined]

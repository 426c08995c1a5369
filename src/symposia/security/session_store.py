"""Browser sessions kept in the database, so that they can be ended.

The signed cookie carries only a session's id; its row says who signed in, with which
credential, its CSRF token and when it ends: `SESSION_MAX_AGE_SECONDS` after it was last
used (sliding), and at the latest `SESSION_ABSOLUTE_MAX_AGE_SECONDS` after sign-in.
Deleting the row ends the session wherever the cookie was copied to. Only requests that
carry the cookie read a row; the last-use time is written at most once a minute.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import utcnow
from symposia.security.principals import Kind, Principal
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.convert import aware
from symposia.storage.tables import SessionRow

TOUCH_SECONDS = 60.0  # how stale `last_seen` may get before a request writes it (at most)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    principal: Principal
    key_id: str | None
    fingerprint: str | None
    csrf: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


@cancel_safe
class SessionStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        idle_seconds: float,
        absolute_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._idle = timedelta(seconds=idle_seconds)
        self._absolute = timedelta(seconds=absolute_seconds)
        self._touch = min(TOUCH_SECONDS, idle_seconds / 10)

    async def create(
        self, principal: Principal, key_id: str | None, fingerprint: str | None
    ) -> SessionRecord:
        """A new session (expired ones are cleared out on the way)."""
        now = utcnow()
        row = SessionRow(
            id=secrets.token_urlsafe(24),
            principal=principal.id,
            kind=principal.kind,
            name=principal.name,
            key_id=key_id,
            fingerprint=fingerprint,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            last_seen=now,
            expires_at=now + self._absolute,
        )
        async with self._sessions.begin() as session:
            await session.execute(
                delete(SessionRow).where(
                    (SessionRow.expires_at < now) | (SessionRow.last_seen < now - self._idle)
                )
            )
            session.add(row)
        return _record(row)

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live session of this id, its use recorded; None if it ended or expired."""
        async with self._sessions() as session:
            row = await session.get(SessionRow, session_id)
        if row is None:
            return None
        record, now = _record(row), utcnow()
        if now >= record.expires_at or now >= record.last_seen + self._idle:
            await self.delete(session_id)
            return None
        if (now - record.last_seen).total_seconds() > self._touch:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(SessionRow).where(SessionRow.id == session_id).values(last_seen=now)
                )
        return record

    def idle_deadline(self, record: SessionRecord) -> datetime:
        return min(record.expires_at, record.last_seen + self._idle)

    async def of(self, principal_id: str) -> list[SessionRecord]:
        """A principal's unexpired sessions, newest first."""
        now = utcnow()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(SessionRow)
                .where(SessionRow.principal == principal_id, SessionRow.expires_at > now)
                .order_by(SessionRow.created_at.desc())
            )
            records = [_record(row) for row in rows]
        return [r for r in records if now < r.last_seen + self._idle]

    async def delete(self, session_id: str, principal_id: str | None = None) -> bool:
        """End one session (only if it is `principal_id`'s, when given)."""
        query = delete(SessionRow).where(SessionRow.id == session_id)
        if principal_id is not None:
            query = query.where(SessionRow.principal == principal_id)
        async with self._sessions.begin() as session:
            result = await session.execute(query)
        return bool(getattr(result, "rowcount", 0))

    async def end_all(self, principal_id: str) -> int:
        """End every session of a principal (`symposia sessions end`: a person removed at
        the OpenID provider, a leaked cookie); how many there were."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(SessionRow).where(SessionRow.principal == principal_id)
            )
        return int(getattr(result, "rowcount", 0) or 0)


def _record(row: SessionRow) -> SessionRecord:
    principal = Principal(row.principal, cast(Kind, row.kind), row.name)
    return SessionRecord(
        row.id,
        principal,
        row.key_id,
        row.fingerprint,
        row.csrf,
        _utc(row.created_at),
        _utc(row.last_seen),
        _utc(row.expires_at),
    )


def _utc(value: datetime) -> datetime:
    stamp = aware(value)
    assert stamp is not None
    return stamp

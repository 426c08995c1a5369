"""Idempotency keys in SQL: claim a key (one of several racing requests wins, on any
worker: the primary key decides), record the answer, or let the key go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import utcnow
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.tables import IdempotencyKeyRow

CLAIM_ATTEMPTS = 3  # a key found, then gone (it expired, or its request failed): claim again


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What an earlier request with the key left: its route and body's fingerprint, and its
    answer (`status` None: still in flight)."""

    route: str
    fingerprint: str
    status: int | None
    response: dict[str, Any] | None


@cancel_safe
class SqlIdempotencyKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim(
        self,
        principal: str,
        key: str,
        route: str,
        fingerprint: str,
        ttl: float,
        abandoned_after: float,
    ) -> KeyRecord | None:
        """Claim `key` for this request (None), or the record of the request that has it.
        Keys older than `ttl` seconds are forgotten first (the principal's, so the table is
        kept small by those who use it), and so are claims still without an answer after
        `abandoned_after` seconds (their request died: a retry may run)."""
        for _ in range(CLAIM_ATTEMPTS):
            now = utcnow()
            await self._forget(principal, now, ttl, abandoned_after)
            try:
                async with self._sessions.begin() as session:
                    session.add(
                        IdempotencyKeyRow(
                            principal=principal,
                            key=key,
                            route=route,
                            fingerprint=fingerprint,
                            created_at=now,
                        )
                    )
                return None
            except IntegrityError:
                pass
            async with self._sessions() as session:
                row = await session.get(IdempotencyKeyRow, (principal, key))
                if row is not None:
                    return KeyRecord(row.route, row.fingerprint, row.status, row.response)
        raise RuntimeError(f"idempotency key could not be claimed in {CLAIM_ATTEMPTS} attempts")

    async def _forget(
        self, principal: str, now: datetime, ttl: float, abandoned_after: float
    ) -> None:
        expired = IdempotencyKeyRow.created_at < now - timedelta(seconds=ttl)
        abandoned = and_(
            IdempotencyKeyRow.status.is_(None),
            IdempotencyKeyRow.created_at < now - timedelta(seconds=abandoned_after),
        )
        async with self._sessions.begin() as session:
            await session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.principal == principal, or_(expired, abandoned)
                )
            )

    async def record(self, principal: str, key: str, status: int, response: dict[str, Any]) -> None:
        """The claimed request's answer, for its retries."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.principal == principal, IdempotencyKeyRow.key == key)
                .values(status=status, response=response)
            )

    async def release(self, principal: str, key: str) -> None:
        """Let the key go: its request failed and created nothing; a retry runs anew."""
        async with self._sessions.begin() as session:
            await session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.principal == principal,
                    IdempotencyKeyRow.key == key,
                    IdempotencyKeyRow.status.is_(None),
                )
            )

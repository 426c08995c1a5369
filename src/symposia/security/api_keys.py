"""API keys: random, shown once, stored as a SHA-256 of the secret part.

A key reads `sym_<id>_<secret>`: the id finds the row, the secret is compared in constant
time. SHA-256 (not bcrypt) is right here: the secret has 256 random bits, so there is
nothing to slow a guesser down for, and every API request pays the check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import utcnow
from symposia.storage.cancel_safe import finishing
from symposia.storage.convert import aware
from symposia.storage.tables import ApiKeyRow

PREFIX = "sym"
KEY_PATTERN = re.compile(r"^sym_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
CACHE_SECONDS = 10.0  # how long a revocation may take to reach a running server


def parse_key(presented: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None; the secret may itself hold `_`."""
    match = KEY_PATTERN.match(presented)
    return None if match is None else (match.group(1), match.group(2))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyStore:
    """The keys. Writes and listings finish before a cancel reaches their caller on SQLite
    (`storage.cancel_safe`); `verify` and `active`, on every request, are not wrapped: a
    cache hit opens no transaction, and a miss queries in a task of its own (`_lookup`)
    that a cancelled request does not cut."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cache: dict[str, tuple[float, str | None]] = {}
        # One lookup per key at a time: when the cache expires under load, the requests
        # in flight with that key wait for one query instead of each running its own.
        self._lookups: dict[str, asyncio.Task[str | None]] = {}

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database the keys live in (`symposia keys create --adopt-anonymous`)."""
        return self._sessions

    @finishing
    async def create(self, name: str) -> tuple[ApiKeyInfo, str]:
        """A new key; the returned plain key is never stored and cannot be shown again."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=key_id,
            name=name,
            secret_sha256=_digest(secret),
            created_at=utcnow(),
            revoked_at=None,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return _info(row), f"{PREFIX}_{key_id}_{secret}"

    @finishing
    async def list(self) -> list[ApiKeyInfo]:
        async with self._sessions() as session:
            rows = await session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [_info(row) for row in rows]

    @finishing
    async def revoke(self, key_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        self._cache.pop(key_id, None)
        self._lookups.pop(key_id, None)
        return bool(getattr(result, "rowcount", 0))

    @finishing
    async def any_active(self) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None)).limit(1)
            )
            return found is not None

    async def verify(self, presented: str) -> str | None:
        """The key's id if `presented` is a valid, unrevoked key; else None."""
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        stored = await self._active_digest(key_id)
        if stored is None:
            return None
        return key_id if hmac.compare_digest(_digest(secret), stored) else None

    async def active(self, key_id: str) -> bool:
        """Whether the key is still unrevoked: a browser session made with it ends when it
        is revoked (within CACHE_SECONDS)."""
        return await self._active_digest(key_id) is not None

    async def _active_digest(self, key_id: str) -> str | None:
        cached = self._cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        lookup = self._lookups.get(key_id)
        if lookup is None:
            lookup = self._lookups[key_id] = asyncio.create_task(self._lookup(key_id))
        # Shielded: one waiter cancelled (its client left) does not fail the others.
        return await asyncio.shield(lookup)

    async def settle(self, grace: float) -> None:
        """Wait for the lookups under way (shielded: one whose callers all left still
        reads storage), so none outlives the engine and the loop."""
        if self._lookups:
            await asyncio.wait(set(self._lookups.values()), timeout=grace)

    async def _lookup(self, key_id: str) -> str | None:
        try:
            return await self._query(key_id)
        finally:
            if self._lookups.get(key_id) is asyncio.current_task():
                del self._lookups[key_id]

    async def _query(self, key_id: str) -> str | None:
        async with self._sessions() as session:
            stored = await session.scalar(
                select(ApiKeyRow.secret_sha256).where(
                    ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None)
                )
            )
        self._cache[key_id] = (time.monotonic(), stored)
        return stored


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    created = aware(row.created_at)
    assert created is not None
    return ApiKeyInfo(row.id, row.name, created, aware(row.revoked_at))

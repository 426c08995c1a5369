"""Stored `/v1/responses` answers: one row each, read alone or as a chain."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from symposia.domain.models import utcnow
from symposia.storage.cancel_safe import cancel_safe
from symposia.storage.tables import ResponseRow

RESPONSES: Table = ResponseRow.__table__  # type: ignore[assignment]
CHAIN_MAX = 1000  # a chain longer than this is cut at its oldest: no loop runs forever


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str | None
    previous_id: str | None
    input: list[dict[str, Any]]
    body: dict[str, Any]
    created_at: datetime


def _of(row: ResponseRow) -> StoredResponse:
    return StoredResponse(row.id, row.owner, row.previous_id, row.input, row.body, row.created_at)


@cancel_safe
class SqlResponseRepository:
    """Responses are written by group commit: an `add` waits for the transaction that
    holds it, and the writes that arrive while one commits go together in the next. A
    stored response is in the database before its client sees it, at a fraction of a
    transaction each under load (one SQLite commit costs about a millisecond of CPU)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(
        self,
        response_id: str,
        owner: str | None,
        previous_id: str | None,
        items: list[dict[str, Any]],
        body: dict[str, Any],
    ) -> None:
        row = {
            "id": response_id,
            "owner": owner,
            "previous_id": previous_id,
            "input": items,
            "body": body,
            "created_at": utcnow(),
        }
        written = asyncio.get_running_loop().create_future()
        self._pending.append((row, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="responses-writer")
        await written

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._sessions.begin() as session:
                    # The table, not the mapped class: a Core executemany, without the
                    # ORM's bulk-insert bookkeeping for each row.
                    await session.execute(RESPONSES.insert(), [row for row, _ in batch])
            except Exception as exc:  # each waiting request fails with it
                for _, written in batch:
                    if not written.done():
                        written.set_exception(exc)
            else:
                for _, written in batch:
                    if not written.done():
                        written.set_result(None)

    async def get(self, response_id: str) -> StoredResponse | None:
        async with self._sessions() as session:
            row = await session.get(ResponseRow, response_id)
            return _of(row) if row is not None else None

    async def chain(self, response_id: str) -> list[StoredResponse]:
        """`response_id` and the responses it continues, oldest first: one recursive
        query, however long the chain (at most CHAIN_MAX, cut at its oldest)."""
        start = select(ResponseRow.id, ResponseRow.previous_id, literal(1).label("depth"))
        links = start.where(ResponseRow.id == response_id).cte("links", recursive=True)
        links = links.union_all(
            select(ResponseRow.id, ResponseRow.previous_id, links.c.depth + 1)
            .join(links, ResponseRow.id == links.c.previous_id)
            .where(links.c.depth < CHAIN_MAX)
        )
        query = (
            select(ResponseRow)
            .join(links, ResponseRow.id == links.c.id)
            .order_by(links.c.depth.desc())
        )
        async with self._sessions() as session:
            return [_of(row) for row in await session.scalars(query)]

    async def delete(self, response_id: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(delete(ResponseRow).where(ResponseRow.id == response_id))
            return bool(getattr(result, "rowcount", 0))

"""Test databases: a SQLite file per test, or a PostgreSQL database per test session.

PostgreSQL is the machine's own server (127.0.0.1:5432, trust auth). A session creates its
own database from `test`, each test starts from empty tables, and the database is dropped
at the end. When the server is unreachable the PostgreSQL tests skip with the reason,
unless CI is set: then they fail, so a broken CI machine cannot pass by skipping.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

PG_HOST = os.environ.get("SYMPOSIA_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SYMPOSIA_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("SYMPOSIA_TEST_PG_USER", "postgres")
PG_ADMIN_DB = "test"
TABLES = (
    "tool_approvals",
    "usage_ledger",
    "key_reservations",
    "key_limits",
    "idempotency_keys",
    "replies",
    "messages",
    "run_turns",
    "run_bot_edits",
    "run_bots",
    "runs",
    "conversations",
    "api_keys",
    "sessions",
)


def _run(make: Callable[[], Awaitable[None]]) -> None:
    """Run a coroutine to completion from sync code, even inside a running event loop."""

    async def main() -> None:
        await make()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=3
    )


def unavailable(reason: str) -> None:
    message = f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class PostgresDatabases:
    """Creates and drops throwaway databases on the test server."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self) -> str:
        name = f"symposia_test_{uuid.uuid4().hex[:12]}"

        async def go() -> None:
            admin = await _admin()
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()

        try:
            _run(go)
        except (OSError, asyncpg.PostgresError) as exc:
            unavailable(f"{type(exc).__name__}: {exc}")
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        async def go() -> None:
            admin = await _admin()
            try:
                for name in self.created:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()

        if self.created:
            _run(go)


async def truncate(database: str) -> None:
    connection = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=database, timeout=3
    )
    try:
        exists = await connection.fetchval("SELECT to_regclass('public.runs')")
        if exists:
            await connection.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    finally:
        await connection.close()

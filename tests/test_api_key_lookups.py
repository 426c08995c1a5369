"""The API key cache under load: when it expires, the requests in flight with one key
share one database lookup (issue 23: every request of 50 ran its own, each on a
connection and a thread of its own)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from symposia.security.api_keys import ApiKeyStore, _digest

SECRET = "s" * 43
KEY = f"sym_0123456789ab_{SECRET}"


class CountingSessions:
    """An `async_sessionmaker` stand-in whose session answers `scalar` slowly, counted."""

    def __init__(self) -> None:
        self.queries = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Any]:
        yield self

    async def scalar(self, statement: object) -> str:
        self.queries += 1
        await asyncio.sleep(0.05)
        return _digest(SECRET)


async def test_concurrent_requests_share_one_key_lookup() -> None:
    sessions = CountingSessions()
    store = ApiKeyStore(sessions)  # type: ignore[arg-type]
    found = await asyncio.gather(*(store.verify(KEY) for _ in range(50)))
    assert found == ["0123456789ab"] * 50
    assert sessions.queries == 1
    assert await store.verify(KEY) == "0123456789ab"
    assert sessions.queries == 1  # cached


async def test_a_waiter_that_leaves_does_not_fail_the_others() -> None:
    sessions = CountingSessions()
    store = ApiKeyStore(sessions)  # type: ignore[arg-type]
    first = asyncio.create_task(store.verify(KEY))
    second = asyncio.create_task(store.verify(KEY))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "0123456789ab"
    assert sessions.queries == 1

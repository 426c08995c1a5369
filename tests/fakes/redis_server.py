"""The machine's Redis for tests: its address, and checks that skip a test when it is down
(and fail it under CI, so a broken CI machine cannot pass by skipping)."""

from __future__ import annotations

import os

import pytest
import redis
import redis.asyncio as aioredis

REDIS_URL = os.environ.get("SYMPOSIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unreachable(exc: BaseException) -> None:
    message = f"Redis at {REDIS_URL} is not reachable: {exc}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


async def require_redis() -> None:
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        _unreachable(exc)
    finally:
        await client.aclose()


def require_redis_sync() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (OSError, redis.RedisError) as exc:
        _unreachable(exc)
    finally:
        client.close()

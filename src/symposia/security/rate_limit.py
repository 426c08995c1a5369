"""Rate limits through the `limits` library: in memory, or Redis when REDIS_URL is set.

If Redis is unreachable the server keeps serving (fails open): the request passes, a
warning is logged at most once a minute, and a metric counts every fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from symposia.errors import RateLimitedError

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(slots=True)
class RateLimitStatus:
    degraded: bool = False
    fallbacks: int = 0
    last_warning: float = 0.0


class RateLimiter:
    def __init__(
        self,
        limits: dict[str, str],
        redis_url: str | None = None,
        on_reject: Callable[[str], None] | None = None,
        on_fallback: Callable[[], None] | None = None,
    ) -> None:
        self._items: dict[str, RateLimitItem] = {s: parse(v) for s, v in limits.items()}
        storage: Storage
        self._pool: aioredis.ConnectionPool | None = None
        if redis_url:
            # Our own pool, so shutdown can close its connections.
            self._pool = aioredis.ConnectionPool.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                # limits hands this on to redis-py; its hints list only scalar options.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self.uses_redis = bool(redis_url)
        self._limiter = MovingWindowRateLimiter(storage)
        self._on_reject = on_reject
        self._on_fallback = on_fallback
        self.status = RateLimitStatus()

    async def hit(self, scope: str, key: str) -> None:
        """Count one request of `key` in `scope`; RateLimitedError when over the limit."""
        item = self._items[scope]
        try:
            allowed = await self._limiter.hit(item, scope, key)
            if allowed:
                self.status.degraded = False
                return
            stats = await self._limiter.get_window_stats(item, scope, key)
        except (StorageError, OSError, TimeoutError) as exc:
            self._fall_open(exc)
            return
        if self._on_reject is not None:
            self._on_reject(scope)
        retry_after = max(1, int(stats.reset_time - time.time() + 0.999))
        raise RateLimitedError(
            f"rate limit of {item} for {scope} exceeded; try again in {retry_after} s",
            headers={
                "Retry-After": str(retry_after),
                "X-RateLimit-Limit": str(item.amount),
                "X-RateLimit-Remaining": str(max(0, stats.remaining)),
                "X-RateLimit-Reset": str(int(stats.reset_time)),
            },
        )

    def _fall_open(self, exc: BaseException) -> None:
        self.status.degraded = True
        self.status.fallbacks += 1
        if self._on_fallback is not None:
            self._on_fallback()
        now = time.monotonic()
        if now - self.status.last_warning >= WARN_EVERY_SECONDS:
            self.status.last_warning = now
            logger.warning(
                "rate-limit storage unreachable, letting requests through: %s", type(exc).__name__
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def healthy(self) -> bool:
        """One PING (memory storage: always true); never raises."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                healthy = bool(await self.storage.check())
        except (StorageError, OSError, TimeoutError, ConnectionError):
            healthy = False
        if healthy:
            self.status.degraded = False
        return healthy

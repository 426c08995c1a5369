"""Rate limits through the `limits` library: in memory, or Redis when REDIS_URL is set.

If Redis is unreachable the server keeps serving (fails open): the request passes, a
warning is logged at most once a minute, and a metric counts every fallback.

In memory the limits are counted by our own moving window (`moving_window`): `limits'`
asyncio memory storage starts a task and a thread-pool hop on every hit, its synchronous
one a timer thread every few milliseconds under load; ours does no I/O and starts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from limits import RateLimitItem, WindowStats, parse
from limits.errors import StorageError

from symposia.errors import RateLimitedError
from symposia.security.moving_window import MovingWindow

if TYPE_CHECKING:  # Redis's client is imported only when REDIS_URL is set (idle memory)
    import redis.asyncio as aioredis
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0
REDIS_TIMEOUT_SECONDS = 0.5


class RateLimiter:
    def __init__(
        self,
        limits: dict[str, str],
        redis_url: str | None = None,
        on_reject: Callable[[str], None] | None = None,
        on_fallback: Callable[[], None] | None = None,
    ) -> None:
        self._items: dict[str, RateLimitItem] = {s: parse(v) for s, v in limits.items()}
        self._pool: aioredis.ConnectionPool | None = None
        self._redis: RedisStorage | None = None
        self._redis_limiter: MovingWindowRateLimiter | None = None
        self._memory: MovingWindow | None = None
        if redis_url:
            import redis.asyncio as aioredis
            from limits.aio.storage import RedisStorage
            from limits.aio.strategies import MovingWindowRateLimiter

            # Our own pool, so shutdown can close its connections.
            self._pool = aioredis.ConnectionPool.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._redis = RedisStorage(
                f"async+{redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                # limits hands this on to redis-py; its hints list only scalar options.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
            self._redis_limiter = MovingWindowRateLimiter(self._redis)
        else:
            self._memory = MovingWindow()
        self.uses_redis = bool(redis_url)
        self._on_reject = on_reject
        self._on_fallback = on_fallback
        self._last_warning = 0.0  # the metric counts every fallback; the log, one a minute

    async def hit(self, scope: str, key: str) -> None:
        """Count one request of `key` in `scope`; RateLimitedError when over the limit."""
        if not await self._take(scope, key, count=True):
            await self._refuse(scope, key)

    async def check(self, scope: str, key: str) -> None:
        """RateLimitedError when `key` has no room left in `scope`; counts nothing: for a
        request that counts only once admitted (`count`), as a run the running-runs
        limit refuses must not use up the runs-per-minute budget."""
        if not await self._take(scope, key, count=False):
            await self._refuse(scope, key)

    async def count(self, scope: str, key: str) -> None:
        """Count one admitted request (checked before): never refuses, so concurrent
        requests that all passed the check may take a window a few over its limit."""
        await self._take(scope, key, count=True)

    async def _take(self, scope: str, key: str, *, count: bool) -> bool:
        """Whether `key` had room in `scope`; with `count`, a hit is counted if it had.
        True (failing open) when the Redis storage cannot be reached."""
        item = self._items[scope]
        if self._memory is not None:
            window = item.key_for(scope, key)
            seconds = item.get_expiry()
            if count:
                return self._memory.hit(window, item.amount, seconds)
            return self._memory.test(window, item.amount, seconds)
        assert self._redis_limiter is not None
        try:
            if count:
                return await self._redis_limiter.hit(item, scope, key)
            return await self._redis_limiter.test(item, scope, key)
        except (StorageError, OSError, TimeoutError) as exc:
            self._fall_open(exc)
            return True

    async def _refuse(self, scope: str, key: str) -> None:
        item = self._items[scope]
        stats: WindowStats
        if self._memory is not None:
            stats = self._memory.stats(item.key_for(scope, key), item.amount, item.get_expiry())
        else:
            assert self._redis_limiter is not None
            try:
                stats = await self._redis_limiter.get_window_stats(item, scope, key)
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
        if self._on_fallback is not None:
            self._on_fallback()
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            logger.warning(
                "rate-limit storage unreachable, letting requests through: %s", type(exc).__name__
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def healthy(self) -> bool:
        """One PING (memory storage: always true); never raises."""
        if self._redis is None:
            return True
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS * 2):
                return bool(await self._redis.check())
        except (StorageError, OSError, TimeoutError, ConnectionError):
            return False

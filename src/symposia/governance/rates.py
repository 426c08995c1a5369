"""A key's `rpm`, `tpm` and `max_parallel`: in Redis when REDIS_URL is set (shared by
every worker), else in this process.

A call is admitted and counted in one step (a Lua script on Redis), and `uncount` takes
it back when the budget then refuses it: a refused request is never counted. Requests
per minute are a sliding window; tokens per minute a fixed one (a call's tokens are
known only when it ends); calls at once are members of a set whose entries carry a
lease, so a dead process's calls stop counting when it lapses. Redis unreachable:
requests pass (fail open), as the other rate limits do.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING

from symposia.errors import RateLimitedError
from symposia.governance.limits import KeyLimits

if TYPE_CHECKING:
    import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

WINDOW = 60.0
PREFIX = "symposia:keyrate:"
REDIS_TIMEOUT_SECONDS = 0.5

_ADMIT = """
local now = tonumber(ARGV[1])
local rpm, par, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local member, lease = ARGV[5], tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if rpm >= 0 and redis.call('ZCARD', KEYS[1]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, tostring(tonumber(oldest[2]) + 60 - now)}
end
if par >= 0 and redis.call('ZCARD', KEYS[2]) >= par then return {2, '1'} end
if tpm >= 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= tpm then
  return {3, tostring(60 - (now % 60))}
end
if rpm >= 0 then redis.call('ZADD', KEYS[1], now, member); redis.call('EXPIRE', KEYS[1], 61) end
if par >= 0 then
  redis.call('ZADD', KEYS[2], now + lease, member)
  redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 60)
end
return {0, '0'}
"""

_WHAT = {1: "rpm", 2: "max_parallel", 3: "tpm"}


def _refused(limits: KeyLimits, which: int, retry_after: float) -> RateLimitedError:
    name = _WHAT[which]
    value = getattr(limits, name)
    seconds = max(1, math.ceil(retry_after))
    what = {
        "rpm": f"{value} requests a minute",
        "tpm": f"{value} tokens a minute",
        "max_parallel": f"{value} calls at once",
    }[name]
    error = RateLimitedError(
        f"key {limits.key_id} is limited to {what} ({name}); try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
    error.code = f"{name}_exceeded"
    return error


def _arg(value: int | None) -> int:
    return -1 if value is None else value


class KeyRates:
    def __init__(self, redis_url: str | None, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._redis: aioredis.Redis | None = None
        if redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._script = self._redis.register_script(_ADMIT)
        self._requests: dict[str, deque[float]] = defaultdict(deque)
        self._open: dict[str, set[str]] = defaultdict(set)
        self._tokens: dict[str, tuple[int, int]] = {}
        self._held: dict[str, str] = {}  # ticket -> key, for lease renewal on Redis

    async def admit(self, limits: KeyLimits, ticket: str) -> None:
        """Count the call in; RateLimitedError (with Retry-After) if it is over a limit."""
        if not limits.limits_rate:
            return
        now = time.time()
        if self._redis is None:
            which, retry = self._admit_here(limits, ticket, now)
        else:
            try:
                which, retry = await self._admit_redis(limits, ticket, now)
            except Exception as exc:  # fail open: Redis down must not stop the server
                logger.warning("key rate limits: Redis unreachable (%s)", type(exc).__name__)
                return
        if which:
            raise _refused(limits, which, retry)
        if limits.max_parallel is not None:
            self._held[ticket] = limits.key_id

    def _admit_here(self, limits: KeyLimits, ticket: str, now: float) -> tuple[int, float]:
        key = limits.key_id
        requests = self._requests[key]
        while requests and requests[0] <= now - WINDOW:
            requests.popleft()
        if limits.rpm is not None and len(requests) >= limits.rpm:
            return 1, requests[0] + WINDOW - now
        if limits.max_parallel is not None and len(self._open[key]) >= limits.max_parallel:
            return 2, 1.0
        minute, used = self._tokens.get(key, (0, 0))
        if limits.tpm is not None and minute == int(now // WINDOW) and used >= limits.tpm:
            return 3, WINDOW - now % WINDOW
        if limits.rpm is not None:
            requests.append(now)
        if limits.max_parallel is not None:
            self._open[key].add(ticket)
        return 0, 0.0

    async def _admit_redis(self, limits: KeyLimits, ticket: str, now: float) -> tuple[int, float]:
        key = limits.key_id
        minute = int(now // WINDOW)
        keys = [f"{PREFIX}{key}:rpm", f"{PREFIX}{key}:open", f"{PREFIX}{key}:tpm:{minute}"]
        args: list[str | int] = [
            repr(now),
            _arg(limits.rpm),
            _arg(limits.max_parallel),
            _arg(limits.tpm),
            ticket,
            repr(self.lease_seconds),
        ]
        which, retry = await self._script(keys=keys, args=args)
        return int(which), float(retry)

    async def uncount(self, limits: KeyLimits, ticket: str) -> None:
        """Take back an admitted call that the budget then refused."""
        await self.done(limits, ticket, 0)
        if limits.rpm is None:
            return
        if self._redis is None:
            requests = self._requests[limits.key_id]
            if requests:
                requests.pop()
            return
        try:
            await self._redis.zrem(f"{PREFIX}{limits.key_id}:rpm", ticket)
        except Exception as exc:
            logger.warning("key rate limits: Redis unreachable (%s)", type(exc).__name__)

    async def done(self, limits: KeyLimits, ticket: str, tokens: int) -> None:
        """The call ended: its slot is free; its tokens count in this minute."""
        if not limits.limits_rate:
            return
        self._held.pop(ticket, None)
        now = time.time()
        minute = int(now // WINDOW)
        if self._redis is None:
            self._open[limits.key_id].discard(ticket)
            if tokens and limits.tpm is not None:
                was, used = self._tokens.get(limits.key_id, (minute, 0))
                self._tokens[limits.key_id] = (minute, (used if was == minute else 0) + tokens)
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if limits.max_parallel is not None:
                    pipe.zrem(f"{PREFIX}{limits.key_id}:open", ticket)
                if tokens and limits.tpm is not None:
                    counter = f"{PREFIX}{limits.key_id}:tpm:{minute}"
                    pipe.incrby(counter, tokens)
                    pipe.expire(counter, 120)
                await pipe.execute()
        except Exception as exc:
            logger.warning("key rate limits: Redis unreachable (%s)", type(exc).__name__)

    async def renew(self) -> int:
        """Extend the leases of this process's open calls (Redis only)."""
        if self._redis is None or not self._held:
            return 0
        until = time.time() + self.lease_seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket, key in list(self._held.items()):
                pipe.zadd(f"{PREFIX}{key}:open", {ticket: until}, xx=True)
            await pipe.execute()
        return len(self._held)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

"""Event log on Redis Streams, shared by every process of a deployment.

Each stream is two keys in one hash slot: the Redis stream `{prefix}{<id>}` whose entry ids
are the event seqs (`<seq>-0`, so "after N" is a plain range), and a hash `…:meta` holding
the last seq. A Lua script numbers and adds a batch of events at once, so concurrent
appenders (other tasks, other processes) can neither skip nor repeat a seq. Closing adds a
marker entry `<last>-1` (a tailing reader sees it like any entry and ends) and sets both
keys to expire after the retention.

Readers never each hold a Redis connection: one dispatcher task per process runs a single
blocking XREAD over every stream this process has subscribers for, keeps each stream's
recent events in memory and wakes the local subscribers, as the in-memory log does. A
subscriber that is behind what the process keeps (a replay) reads ranges from Redis over a
small bounded pool, so a thousand viewers cost the same connections as one.

Appends issued in the same loop iteration go out as one pipeline (group commit): a lone
turn pays one round trip per token, many concurrent turns share round trips.

A Redis that stops answering costs a request at most about connect + command timeout
(REDIS_CONNECT_TIMEOUT_SECONDS, REDIS_TIMEOUT_SECONDS), then a 503 `event_log_unavailable`.
The tail's blocking read waits TAIL_BLOCK_MS by design, so its socket waits that much longer
than a command: an idle tail is not a lost Redis.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from symposia.domain.event_read import ranges_of
from symposia.domain.events import Event, EventType
from symposia.errors import EventLogUnavailableError
from symposia.events.log import (
    BATCH_EVENTS,
    EventLogUnreachableError,
    ResumeGoneError,
    StreamNotFoundError,
    fenced_out,
)
from symposia.events.wakeup import Wakeup

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

KEY_PREFIX = "symposia:events:"
CLIENT_NAME = "symposia-events"
# Commands other than the tail (appends, replays, metadata) share this many connections;
# a command waits for one of them at most its own timeout.
POOL_CONNECTIONS = 8
# Defaults of REDIS_CONNECT_TIMEOUT_SECONDS and REDIS_TIMEOUT_SECONDS.
CONNECT_TIMEOUT_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 3.0
# The tail wakes at least this often even when nothing happens, to notice a dead socket;
# its socket waits this plus a command's timeout for the answer.
TAIL_BLOCK_MS = 5_000
# Recent events a process keeps per tailed stream; a subscriber further behind reads Redis.
TAIL_KEPT_EVENTS = 4 * BATCH_EVENTS
TAIL_READ_COUNT = 1_000
RETRY_MAX_SECONDS = 2.0
WAKE_KEY_SECONDS = 86_400
STOP_WAIT_SECONDS = 2.0

_MISSING = "SYMPOSIA_STREAM_NOT_FOUND"
_CLOSED = "SYMPOSIA_STREAM_CLOSED"

_FENCED = "SYMPOSIA_STREAM_FENCED"

# KEYS: stream, meta. ARGV: max length, the writer's epoch ('' for none), then (type, data)
# pairs. Returns the last seq.
_APPEND = f"""
local last = redis.call('HGET', KEYS[2], 'last')
if not last then return redis.error_reply('{_MISSING}') end
if redis.call('HEXISTS', KEYS[2], 'closed') == 1 then return redis.error_reply('{_CLOSED}') end
-- FENCE: a writer whose epoch is below the stream's is a stale owner: refuse it before
-- anything is written.
if ARGV[2] ~= '' then
  local current = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
  if tonumber(ARGV[2]) < current then
    return redis.error_reply('{_FENCED} ' .. current)
  end
end
local seq = tonumber(last)
for i = 3, #ARGV, 2 do
  seq = seq + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 't', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'last', seq)
return seq
"""

# KEYS: stream, meta. ARGV: (seq, type, data) triples, ascending. Creates the stream with
# these entries unless it exists. Returns 1 when it did.
_RESTORE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = 0
for i = 1, #ARGV, 3 do
  redis.call('XADD', KEYS[1], ARGV[i] .. '-0', 't', ARGV[i + 1], 'd', ARGV[i + 2])
  last = ARGV[i]
end
redis.call('HSET', KEYS[2], 'last', last)
return 1
"""

# KEYS: meta. ARGV: epoch. Raises the stream's epoch to it, never lowers it.
_FENCE = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('{_MISSING}') end
local current = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if tonumber(ARGV[1]) < current then return redis.error_reply('{_FENCED} ' .. current) end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
return 1
"""

# KEYS: stream, meta. ARGV: retention in ms. The marker `<last>-1` ends every tail.
_CLOSE = f"""
local last = redis.call('HGET', KEYS[2], 'last')
if not last then return redis.error_reply('{_MISSING}') end
if redis.call('HEXISTS', KEYS[2], 'closed') == 0 then
  redis.call('HSET', KEYS[2], 'closed', 1)
  redis.call('XADD', KEYS[1], last .. '-1', 'closed', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1
"""

_Entry = tuple[str, dict[str, str]]
_Pending = tuple[str, EventType, dict[str, Any], int | None, "asyncio.Future[Event]"]


def _split(entry_id: str) -> tuple[int, bool]:
    """An entry id as (seq, whether it is the close marker)."""
    seq, _, part = entry_id.partition("-")
    return int(seq), part != "0"


def _error(exc: BaseException, stream_id: str, epoch: int | None = None) -> BaseException:
    """A Redis failure as the error the in-memory log would raise, or a 503."""
    if isinstance(exc, ResponseError):
        if _FENCED in str(exc):
            return fenced_out(stream_id, -1 if epoch is None else epoch, str(exc).split()[-1])
        if _MISSING in str(exc):
            return StreamNotFoundError(f"no stream {stream_id!r}")
        if _CLOSED in str(exc):
            return RuntimeError(f"stream {stream_id} is closed")
    if isinstance(exc, RedisError | OSError):
        return EventLogUnavailableError(
            f"the event log (Redis) is unreachable: {type(exc).__name__}; try again shortly"
        )
    return exc


class _Tail:
    """What this process knows of one stream it tails: every event from `first` on (ids
    need not be consecutive: a stream restored from storage has snapshots standing for
    several) and the position read."""

    __slots__ = ("closed", "events", "first", "key", "position", "seqs", "subscribers", "wakeup")

    def __init__(self, key: str, last: int, closed: bool) -> None:
        self.key = key
        self.events: list[Event] = []
        self.seqs: list[int] = []
        self.first = last + 1  # every event from this id on is in `events`
        self.position = last  # everything up to here is in Redis and known here
        self.closed = closed
        self.subscribers = 0
        self.wakeup = Wakeup()

    def keep(self, events: list[Event]) -> None:
        """Start over from `events`, the stream's latest (none: from the position on)."""
        self.events, self.seqs = events, [e.seq for e in events]
        self.first = events[0].seq if events else self.position + 1

    def after(self, seq: int, limit: int) -> list[Event] | None:
        """Events after `seq` kept here, or None when events after `seq` may be older than
        what is kept (Redis has them)."""
        if seq + 1 < self.first:
            return None
        start = bisect.bisect_right(self.seqs, seq)
        return self.events[start : start + limit]

    def take(self, entries: list[_Entry]) -> None:
        for entry_id, fields in entries:
            seq, marker = _split(entry_id)
            if marker:
                self.closed = True
            elif seq > self.position:
                event = _event(seq, fields)
                if min(ranges_of(event))[0] > self.position + 1:  # trimmed past us
                    self.position = seq
                    self.keep([event])
                    continue
                self.events.append(event)
                self.seqs.append(seq)
                self.position = seq
        if len(self.events) > TAIL_KEPT_EVENTS:
            drop = len(self.events) - TAIL_KEPT_EVENTS // 2
            self.keep(self.events[drop:])
        self.wakeup.notify()


def _event(seq: int, fields: dict[str, str]) -> Event:
    return Event(seq, cast(EventType, fields["t"]), orjson.loads(fields["d"]))


class RedisEventLog:
    """The `EventLog` on Redis Streams; `start` before use, `aclose` at shutdown."""

    def __init__(
        self,
        url: str,
        max_events: int = 100_000,
        retention_seconds: float = 3600.0,
        prefix: str = KEY_PREFIX,
        client_name: str = CLIENT_NAME,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT_SECONDS,
        tail_block_ms: int = TAIL_BLOCK_MS,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._max_events = max_events
        self._retention_ms = max(1, int(retention_seconds * 1000))
        self._tail_block_ms = tail_block_ms
        options: dict[str, Any] = {
            "decode_responses": True,
            "client_name": client_name,
            "socket_connect_timeout": connect_timeout,
        }
        self._redis = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=POOL_CONNECTIONS,
                timeout=command_timeout,
                socket_timeout=command_timeout,
                **options,
            )
        )
        # The tail's own connection: its XREAD blocks for up to `tail_block_ms`, so its
        # socket gives the answer a command's timeout beyond that (redis-py's default, 5 s,
        # equal to the block, read every quiet block as a lost Redis).
        self._blocking = aioredis.Redis.from_pool(
            aioredis.ConnectionPool.from_url(
                url,
                max_connections=1,
                socket_timeout=tail_block_ms / 1000 + command_timeout,
                **options,
            )
        )
        self._append_script = self._redis.register_script(_APPEND)
        self._close_script = self._redis.register_script(_CLOSE)
        self._fence_script = self._redis.register_script(_FENCE)
        self._restore_script = self._redis.register_script(_RESTORE)
        self._wake_key = f"{prefix}wake:{uuid.uuid4().hex}"
        self._tails: dict[str, _Tail] = {}
        self._opening = asyncio.Lock()
        self._dispatcher: asyncio.Task[None] | None = None
        self._stopping = False
        self._leaving = False
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    def _key(self, stream_id: str) -> str:
        return f"{self._prefix}{{{stream_id}}}"

    def _keys(self, stream_id: str) -> list[str]:
        key = self._key(stream_id)
        return [key, f"{key}:meta"]

    async def start(self) -> None:
        """Fail at once, with one line, when Redis cannot be reached: a log cannot fail open."""
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise EventLogUnreachableError(
                f"the Redis event log (EVENT_LOG, REDIS_URL) is unreachable: {exc}"
            ) from None

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._dispatcher is not None:
            # Ended by a wake-up rather than cancelled: a read cancelled mid-connect can
            # leave its socket behind.
            self._stopping = True
            with contextlib.suppress(RedisError, OSError, EventLogUnavailableError):
                await self._wake()
            done, _ = await asyncio.wait([self._dispatcher], timeout=STOP_WAIT_SECONDS)
            if not done:
                self._dispatcher.cancel()
                await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
            self._stopping = False
            with contextlib.suppress(RedisError, OSError):  # else it expires on its own
                await self._redis.delete(self._wake_key)
        await self._blocking.aclose()
        await self._redis.aclose()

    async def create(self, stream_id: str) -> None:
        try:
            await self._redis.hsetnx(self._keys(stream_id)[1], "last", 0)
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc

    async def restore(self, stream_id: str, events: Sequence[Event]) -> None:
        args: list[str | int] = []
        for item in events:
            args += [item.seq, item.type, orjson.dumps(item.data).decode()]
        try:
            await self._restore_script(self._keys(stream_id), args)
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc

    async def append(
        self, stream_id: str, type: EventType, data: dict[str, Any], epoch: int | None = None
    ) -> Event:
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._pending.append((stream_id, type, data, epoch, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Write what was appended meanwhile, one pipeline at a time, until nothing is left.
        It starts on the next loop iteration, so appends made together are written together."""
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)
        finally:
            self._flusher = None

    async def _write(self, batch: list[_Pending]) -> None:
        # One script call per stream and writer's epoch: a stale writer's events are
        # refused together, without holding back the current owner's.
        by_stream: dict[tuple[str, int | None], list[_Pending]] = {}
        for item in batch:
            by_stream.setdefault((item[0], item[3]), []).append(item)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for (stream_id, epoch), items in by_stream.items():
                    args: list[str | int] = [self._max_events, "" if epoch is None else epoch]
                    for _, type_, data, _, _ in items:
                        args += [type_, orjson.dumps(data).decode()]
                    await self._append_script(self._keys(stream_id), args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            for stream_id, _, _, epoch, future in batch:
                if not future.done():
                    future.set_exception(_error(exc, stream_id, epoch))
            if not isinstance(exc, Exception):
                raise
            return
        for ((stream_id, epoch), items), result in zip(by_stream.items(), results, strict=True):
            if isinstance(result, BaseException):
                for *_, future in items:
                    if not future.done():
                        future.set_exception(_error(result, stream_id, epoch))
                continue
            seq = int(result) - len(items)
            for _, type_, data, _, future in items:
                seq += 1
                if not future.done():
                    future.set_result(Event(seq, type_, data))

    async def fence(self, stream_id: str, epoch: int) -> None:
        try:
            await self._fence_script([self._keys(stream_id)[1]], [epoch])
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id, epoch) from exc

    async def close(self, stream_id: str) -> None:
        try:
            await self._close_script(self._keys(stream_id), [self._retention_ms])
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc

    async def _range(
        self, stream_id: str, after_seq: int, limit: int | None
    ) -> tuple[list[Event], bool]:
        """Events after `after_seq` from Redis, and whether the close marker came after them."""
        key, meta = self._keys(stream_id)

        async def fetch() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.exists(meta)
                pipe.xrange(key, f"({after_seq}-0", "+", count=limit)
                return await pipe.execute()

        try:
            found, entries = await self._reading(fetch)
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc
        if not found:
            raise StreamNotFoundError(f"no stream {stream_id!r}")
        events: list[Event] = []
        closed = False
        for entry_id, fields in entries:
            seq, marker = _split(entry_id)
            if marker:
                closed = True
            else:
                events.append(_event(seq, fields))
        if events and min(ranges_of(events[0]))[0] > after_seq + 1:
            await self._check_retained(stream_id, after_seq, events[0].seq)
        return events, closed

    async def _check_retained(self, stream_id: str, after_seq: int, oldest: int) -> None:
        """Raise `ResumeGoneError` unless every event after `after_seq` is still there. The
        first one found does not stand for the id right after it: fine when nothing was
        ever trimmed from the stream (entries are only ever removed by trimming), gone
        otherwise (a snapshot stands only for ids right before it, so the event that held
        `after_seq + 1` was trimmed)."""
        try:
            info = await self._reading(lambda: self._redis.xinfo_stream(self._key(stream_id)))
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc
        added, length = info.get("entries-added"), info.get("length")
        if isinstance(added, int) and isinstance(length, int) and added == length:
            return
        raise ResumeGoneError(
            f"events after {after_seq} are no longer retained; the oldest is {oldest}"
        )

    async def _reading(self, command: Callable[[], Awaitable[_T]]) -> _T:
        """A read, tried once more on fresh connections when a pooled one turned out dead:
        after Redis restarted, or a cut route healed, every connection the pool kept is
        stale, and the first command on each fails though Redis is back. Reads only: an
        append sent again could be written twice."""
        try:
            return await command()
        except RedisConnectionError:
            await self._redis.connection_pool.disconnect(inuse_connections=False)
            return await command()

    def stop_readers(self) -> None:
        self._leaving = True
        for tail in self._tails.values():
            tail.wakeup.notify()

    async def read(self, stream_id: str, after_seq: int = 0) -> list[Event]:
        return (await self._range(stream_id, after_seq, None))[0]

    async def last_seq(self, stream_id: str) -> int:
        try:
            last = await self._reading(lambda: self._redis.hget(self._keys(stream_id)[1], "last"))
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc
        if last is None:
            raise StreamNotFoundError(f"no stream {stream_id!r}")
        return int(last)

    async def exists(self, stream_id: str) -> bool:
        try:
            return bool(await self._reading(lambda: self._redis.exists(self._keys(stream_id)[1])))
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc

    async def subscribe(self, stream_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        async for batch in self.batches(stream_id, after_seq):
            for event in batch:
                yield event

    async def batches(
        self, stream_id: str, after_seq: int = 0, limit: int = BATCH_EVENTS
    ) -> AsyncIterator[Sequence[Event]]:
        """From this process's tail when it holds the position, else from Redis (a replay)."""
        tail = await self._follow(stream_id)
        try:
            position = after_seq
            while True:
                seen = tail.wakeup.count
                batch = tail.after(position, limit)
                closed = tail.closed
                if batch is None:
                    batch, closed = await self._range(stream_id, position, limit)
                if batch:
                    yield batch
                    position = batch[-1].seq
                    if tail.position > position:
                        await asyncio.sleep(0)  # more is there at once: let the others run
                    continue
                if closed or self._leaving:
                    return
                await tail.wakeup.wait(seen)
        finally:
            self._leave(stream_id, tail)

    def _leave(self, stream_id: str, tail: _Tail) -> None:
        tail.subscribers -= 1
        if tail.subscribers == 0 and self._tails.get(stream_id) is tail:
            del self._tails[stream_id]

    async def _follow(self, stream_id: str) -> _Tail:
        """This process's tail of the stream, started (one Redis read) for its first reader."""
        tail = self._tails.get(stream_id)
        if tail is not None:
            tail.subscribers += 1
            return tail
        async with self._opening:
            tail = self._tails.get(stream_id)
            if tail is not None:
                tail.subscribers += 1
                return tail
            tail = await self._open_tail(stream_id)
            # Registered before the dispatcher is told: the read it starts next must name
            # this stream, or it blocks a whole TAIL_BLOCK_MS without it.
            tail.subscribers += 1
            self._tails[stream_id] = tail
            if not tail.closed:
                try:
                    await self._dispatch_also(tail)
                except BaseException:
                    self._leave(stream_id, tail)
                    raise
        return tail

    async def _dispatch_also(self, tail: _Tail) -> None:
        """Have the dispatcher follow `tail` (already in `_tails`): start it, or end the
        blocking read it has in flight, which does not name this stream."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch())
        else:
            await self._wake()

    async def _open_tail(self, stream_id: str) -> _Tail:
        """Starts with the stream's recent events, read at once with its last seq, so the
        viewers that join a young stream from its start all read from here, not Redis."""
        key, meta = self._keys(stream_id)

        async def fetch() -> list[Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hmget(meta, ["last", "closed"])
                pipe.xrevrange(key, "+", "-", count=TAIL_KEPT_EVENTS // 2)
                return await pipe.execute()

        try:
            (last, closed), recent = await self._reading(fetch)
        except (RedisError, OSError) as exc:
            raise _error(exc, stream_id) from exc
        if last is None:
            raise StreamNotFoundError(f"no stream {stream_id!r}")
        events = [_event(_split(i)[0], f) for i, f in reversed(recent) if not _split(i)[1]]
        tail = _Tail(key, int(last), closed is not None)
        tail.keep(events)
        return tail

    async def _wake(self) -> None:
        """End the tail's blocking read, so it reads again with what changed."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": 1}, maxlen=1)
                pipe.expire(self._wake_key, WAKE_KEY_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _error(exc, self._wake_key) from exc

    async def _dispatch(self) -> None:
        """The one blocking read of this process: every open tailed stream, and the wake key
        that `_open_tail` writes to when a stream joins."""
        woken = "0-0"
        retry = 0.05
        while not self._stopping:
            tails = {t.key: t for t in list(self._tails.values()) if not t.closed}
            streams: dict[Any, Any] = {self._wake_key: woken}
            streams.update({key: f"{t.position}-0" for key, t in tails.items()})
            try:
                reply = await self._blocking.xread(
                    streams, count=TAIL_READ_COUNT, block=self._tail_block_ms
                )
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                logger.warning("event log tail lost Redis, retrying: %s", type(exc).__name__)
                await asyncio.sleep(retry)
                retry = min(RETRY_MAX_SECONDS, retry * 2)
                continue
            retry = 0.05
            for key, entries in cast(list[tuple[str, list[_Entry]]], reply or []):
                if key == self._wake_key:
                    woken = entries[-1][0]
                elif key in tails:
                    tails[key].take(entries)

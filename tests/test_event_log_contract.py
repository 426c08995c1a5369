"""One contract for every `EventLog`: the in-memory log and the Redis Streams log pass the same
tests. The Redis variant uses the real server at 127.0.0.1:6379 under a key prefix of its
own; it skips when Redis is down, and fails instead when CI is set."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from symposia.app import container_of, create_app
from symposia.domain.events import Event
from symposia.errors import FencedOutError
from symposia.events.log import ResumeGoneError, StreamNotFoundError
from symposia.events.memory import InMemoryEventLog
from symposia.events.redis import RedisEventLog
from symposia.events.select import ManagedEventLog
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from tests.conftest import make_settings
from tests.fakes.redis_server import REDIS_URL
from tests.fakes.redis_server import require_redis as _require_redis
from tests.sse import collect


@dataclass
class Backend:
    """Makes logs of one kind; `peer` is another process's view of the same streams."""

    name: str
    make: Callable[..., ManagedEventLog]
    opened: list[ManagedEventLog] = field(default_factory=list)
    client_name: str = ""

    async def log(self, **options: Any) -> ManagedEventLog:
        log = self.make(**options)
        await log.start()
        self.opened.append(log)
        return log

    async def peer(self, log: ManagedEventLog) -> ManagedEventLog:
        return log if self.name == "memory" else await self.log()


async def _delete_prefix(prefix: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        made = Backend("memory", InMemoryEventLog)
    else:
        await _require_redis()
        prefix = f"symposia-test:{uuid.uuid4().hex}:"
        name = f"symposia-test-{uuid.uuid4().hex[:8]}"

        def redis_log(**options: Any) -> RedisEventLog:
            return RedisEventLog(REDIS_URL, prefix=prefix, client_name=name, **options)

        made = Backend("redis", redis_log, client_name=name)
    try:
        yield made
    finally:
        for log in made.opened:
            await log.aclose()
        if made.name == "redis":
            await _delete_prefix(prefix)


async def _drain(log: ManagedEventLog, stream: str, after: int = 0) -> list[Event]:
    return [event async for event in log.subscribe(stream, after)]


async def test_appends_are_ordered_gap_free_and_read_after_a_position(backend: Backend) -> None:
    log = await backend.log()
    await log.create("s")
    assert await log.exists("s")
    assert not await log.exists("t")
    assert await log.last_seq("s") == 0
    appended = [await log.append("s", "token", {"i": i, "text": "é😀"}) for i in range(5)]
    assert [e.seq for e in appended] == [1, 2, 3, 4, 5]
    assert await log.read("s") == appended  # data comes back as it went in
    assert [e.data["i"] for e in await log.read("s", 3)] == [3, 4]
    assert await log.read("s", 5) == []
    assert await log.last_seq("s") == 5


async def test_creating_a_stream_that_exists_leaves_it_as_it_is(backend: Backend) -> None:
    """Two processes may both create a reply's stream (its writer, and a viewer that got
    there first): neither resets what the other wrote, nor reopens a closed stream."""
    log = await backend.log()
    other = await backend.peer(log)
    await log.create("s")
    await log.fence("s", 2)
    first = [await log.append("s", "token", {"i": i}, epoch=2) for i in range(3)]
    await other.create("s")
    assert await other.last_seq("s") == 3
    assert await other.read("s") == first
    with pytest.raises(FencedOutError):  # nor its fence
        await other.append("s", "token", {"i": 9}, epoch=1)
    await log.close("s")
    await other.create("s")
    with pytest.raises(RuntimeError):  # still closed
        await other.append("s", "token", {"i": 3})
    assert await _drain(other, "s") == first


async def test_an_append_at_a_lower_epoch_than_the_fence_is_refused(backend: Backend) -> None:
    log = await backend.log()
    other = await backend.peer(log)  # the process that took the stream over
    await log.create("s")
    await log.fence("s", 1)
    kept = await log.append("s", "token", {"i": 1}, epoch=1)
    await other.fence("s", 2)
    with pytest.raises(FencedOutError):
        await log.append("s", "token", {"i": 2}, epoch=1)
    # Refused together with what was appended alongside it, and nothing written.
    refused = await asyncio.gather(
        *(log.append("s", "token", {"i": i}, epoch=1) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, FencedOutError) for r in refused)
    with pytest.raises(FencedOutError):
        await log.fence("s", 1)
    assert await other.read("s") == [kept]
    assert await other.last_seq("s") == 1
    current = await other.append("s", "token", {"i": 3}, epoch=2)
    assert current.seq == 2
    assert [e.data["i"] for e in await log.read("s")] == [1, 3]
    with pytest.raises(StreamNotFoundError):
        await log.fence("missing", 1)


async def test_concurrent_appenders_never_skip_or_repeat_a_seq(backend: Backend) -> None:
    """Tasks of one process and a second process (its own log object) append at once."""
    log = await backend.log()
    other = await backend.peer(log)
    await log.create("s")

    async def appender(which: ManagedEventLog, name: str) -> list[int]:
        seqs = []
        for i in range(40):
            seqs.append((await which.append("s", "token", {"who": name, "i": i})).seq)
            if i % 7 == 0:
                await asyncio.sleep(0)
        return seqs

    results = await asyncio.gather(*(appender(log if n % 2 else other, f"a{n}") for n in range(10)))
    seqs = sorted(seq for result in results for seq in result)
    assert seqs == list(range(1, 401))
    events = await other.read("s")
    assert [e.seq for e in events] == seqs
    for n, result in enumerate(results):  # each appender's events, in its order, at its seqs
        mine = [e for e in events if e.data["who"] == f"a{n}"]
        assert [e.data["i"] for e in mine] == list(range(40))
        assert [e.seq for e in mine] == result


async def test_batches_after_a_position_are_bounded(backend: Backend) -> None:
    log = await backend.log()
    await log.create("s")
    for i in range(1000):
        await log.append("s", "token", {"i": i})
    await log.close("s")
    batches = [batch async for batch in log.batches("s", 10, limit=300)]
    assert [len(batch) for batch in batches] == [300, 300, 300, 90]
    assert [e.seq for batch in batches for e in batch] == list(range(11, 1001))


async def test_subscribe_replays_from_a_position_then_follows_live(backend: Backend) -> None:
    log = await backend.log()
    writer = await backend.peer(log)
    await log.create("s")
    for i in range(5):
        await writer.append("s", "token", {"i": i})
    reader = asyncio.create_task(_drain(log, "s", 3))
    await asyncio.sleep(0.05)
    for i in range(5, 8):
        await writer.append("s", "token", {"i": i})
        await asyncio.sleep(0.01)
    await writer.close("s")
    events = await asyncio.wait_for(reader, 5)
    assert [e.seq for e in events] == [4, 5, 6, 7, 8]
    assert [e.data["i"] for e in events] == [3, 4, 5, 6, 7]


async def _redis_clients(name: str) -> tuple[int, int]:
    """(connections, connections blocked in a read) that carry our client name."""
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        clients = [c for c in await client.client_list() if c.get("name") == name]
    finally:
        await client.aclose()
    return len(clients), sum("b" in c.get("flags", "") for c in clients)


async def test_many_subscribers_share_one_tail(backend: Backend) -> None:
    log = await backend.log()
    writer = await backend.peer(log)
    await log.create("s")
    await writer.append("s", "run_status", {"status": "running"})
    first = asyncio.create_task(_drain(log, "s"))
    await asyncio.sleep(0.1)
    if backend.name == "redis":
        one = await _redis_clients(backend.client_name)
    readers = [asyncio.create_task(_drain(log, "s")) for _ in range(300)]
    await asyncio.sleep(0.2)
    if backend.name == "redis":
        many = await _redis_clients(backend.client_name)
        # The writer's connection and each log's tail: 300 more viewers add nothing.
        assert many == one
        assert many[1] == 1  # one blocking read in the viewers' process
    for i in range(20):
        await writer.append("s", "token", {"i": i})
    await writer.close("s")
    results = await asyncio.wait_for(asyncio.gather(first, *readers), 10)
    assert all([e.seq for e in result] == list(range(1, 22)) for result in results)


async def test_close_ends_waiting_subscribers_and_refuses_appends(backend: Backend) -> None:
    log = await backend.log()
    await log.create("s")
    await log.append("s", "token", {"i": 0})
    waiting = [asyncio.create_task(_drain(log, "s", 1)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in waiting)
    await log.close("s")
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == [[], [], []]
    with pytest.raises(RuntimeError):
        await log.append("s", "token", {})
    await log.close("s")  # twice is harmless
    assert [e.seq for e in await _drain(log, "s")] == [1]  # a closed stream still replays


async def test_closed_streams_expire_after_the_retention(backend: Backend) -> None:
    log = await backend.log(retention_seconds=0.2)
    await log.create("old")
    await log.append("old", "done", {})
    await log.close("old")
    await log.create("open")
    assert await log.exists("old")
    await asyncio.sleep(0.4)
    await log.create("new")  # the memory log expires on create
    assert not await log.exists("old")
    assert await log.exists("open")
    assert await log.exists("new")
    with pytest.raises(StreamNotFoundError):
        await log.read("old")


async def test_a_position_older_than_what_is_retained_is_gone(backend: Backend) -> None:
    log = await backend.log(max_events=100)
    await log.create("s")
    for i in range(250):
        await log.append("s", "token", {"i": i})
    assert [e.seq for e in await log.read("s", 200)] == list(range(201, 251))
    with pytest.raises(ResumeGoneError):
        await log.read("s", 10)
    with pytest.raises(ResumeGoneError):
        await _drain(log, "s", 10)


async def test_an_unknown_stream_is_not_found(backend: Backend) -> None:
    log = await backend.log()
    assert not await log.exists("nope")
    with pytest.raises(StreamNotFoundError):
        await log.read("nope")
    with pytest.raises(StreamNotFoundError):
        await log.last_seq("nope")
    with pytest.raises(StreamNotFoundError):
        await log.append("nope", "token", {})
    with pytest.raises(StreamNotFoundError):
        await log.close("nope")
    with pytest.raises(StreamNotFoundError):
        await _drain(log, "nope")


async def test_a_run_streams_through_the_redis_log(tmp_path: Path) -> None:
    """The API's run flow with REDIS_URL set: the events really live in Redis."""
    await _require_redis()
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}", redis_url=REDIS_URL
    )
    app = create_app(settings, ProviderRegistry([ScriptedProvider(token_delay=0.0)]))
    container = container_of(app)
    assert isinstance(container.log, RedisEventLog)
    await container.start()
    run_id = ""
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            bots = [{"name": n, "model": "scripted/echo"} for n in ("Ada", "Bert")]
            created = await c.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 2})
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            frames = await collect(c, f"/api/stream/{run_id}")
            resumed = await collect(c, f"/api/stream/{run_id}", {"Last-Event-ID": "3"})
        assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
        assert [f.event for f in frames][-1] == "done"
        assert [f.seq for f in resumed] == [f.seq for f in frames[3:]]
        client = aioredis.from_url(REDIS_URL)
        try:
            assert await client.xlen(f"symposia:events:{{{run_id}}}") == len(frames) + 1
        finally:
            await client.aclose()
    finally:
        await container.shutdown()
        if run_id:
            await _delete_prefix(f"symposia:events:{{{run_id}}}")

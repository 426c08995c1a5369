"""Issue 21 #1: on the Redis log a live stream started about 5 s late on a process with no
other active stream (the tail was woken before the new stream was registered, so it
blocked again for a whole XREAD BLOCK), and an idle process logged a false "lost Redis"
every 5 s (redis-py's socket timeout equal to the block). Each log must deliver a new
stream's first token promptly, and an idle tail must stay quiet."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from symposia.app import container_of, create_app
from symposia.events.redis import RedisEventLog
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from tests.conftest import make_settings
from tests.fakes.redis_server import REDIS_URL, require_redis
from tests.sse import frames

# The first token of a new stream, from the request that starts it (the memory log takes
# a few tens of milliseconds here; the bug made it 5 s on Redis).
FIRST_TOKEN_SECONDS = 1.0
BOTS = [{"name": n, "model": "scripted/echo"} for n in ("Ada", "Bert")]
LOGS: dict[str, dict[str, Any]] = {
    "memory": {"event_log": "memory"},
    "redis": {"redis_url": REDIS_URL, "event_log_retention_seconds": 10},
}


@pytest.fixture(params=list(LOGS))
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "redis":
        await require_redis()
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}", **LOGS[request.param]
    )
    # Tokens a little apart: the run is still going when its viewer joins.
    app = create_app(settings, ProviderRegistry([ScriptedProvider(token_delay=0.02)]))
    container = container_of(app)
    await container.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            yield c
    finally:
        await container.shutdown()


async def _first_token(response: httpx.Response, started: float) -> float:
    """Seconds from `started` to the stream's first token; the stream is read to its end
    (the process then has no active stream)."""
    assert response.status_code == 200, await response.aread()
    first = None
    async for frame in frames(response):
        if frame.event == "token" and first is None:
            first = time.monotonic() - started
    assert first is not None, "the stream ended without a token"
    return first


async def _run_viewer(client: httpx.AsyncClient) -> float:
    """Seconds from creating a run to its viewer's first token."""
    started = time.monotonic()
    created = await client.post("/api/run", json={"topic": "t", "bots": BOTS, "max_turns": 2})
    assert created.status_code == 201, created.text
    async with client.stream("GET", f"/api/stream/{created.json()['id']}") as response:
        return await _first_token(response, started)


async def _reply(client: httpx.AsyncClient) -> float:
    """Seconds from sending a chat message to the first token of its reply."""
    started = time.monotonic()
    body = {"message": "one two three four five", "model": "scripted/echo"}
    async with client.stream("POST", "/api/chat/stream", json=body) as response:
        return await _first_token(response, started)


async def test_a_new_stream_gets_its_first_token_promptly_on_every_log(
    client: httpx.AsyncClient,
) -> None:
    # The first stream of a process starts the Redis tail; the bug was in every later one
    # that joins a tail with nothing else to follow.
    timings = {"run viewer": [], "chat reply": []}
    for _ in range(2):
        timings["run viewer"].append(await _run_viewer(client))
        timings["chat reply"].append(await _reply(client))
    late = {
        what: seconds for what, seconds in timings.items() if max(seconds[1:]) > FIRST_TOKEN_SECONDS
    }
    assert not late, f"first token later than {FIRST_TOKEN_SECONDS} s: {timings}"


async def test_an_idle_tail_does_not_report_a_lost_redis(caplog: pytest.LogCaptureFixture) -> None:
    """A follower with nothing to read, over several whole blocks: no warning."""
    await require_redis()
    prefix = f"symposia-test:{uuid.uuid4().hex}:"
    block_ms = 200
    log = RedisEventLog(REDIS_URL, prefix=prefix, command_timeout=0.2, tail_block_ms=block_ms)
    await log.start()
    try:
        await log.create("quiet")
        caplog.set_level(logging.WARNING, logger="symposia.events.redis")
        follower = asyncio.create_task(anext(aiter(log.subscribe("quiet"))))
        await asyncio.sleep(4 * block_ms / 1000)
        assert not follower.done()
        assert [r.getMessage() for r in caplog.records] == []
        event = await log.append("quiet", "run_status", {"status": "running"})
        assert await asyncio.wait_for(follower, 1) == event  # and the tail still follows
    finally:
        await log.aclose()
        client = aioredis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

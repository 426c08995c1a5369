"""One principal cannot hold thousands of open streams (issue 22 point 5): SSE and
WebSocket streams take a slot of MAX_STREAMS_PER_PRINCIPAL each, 429 beyond, given back
when the stream closes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from tests.conftest import make_settings
from tests.fakes.live import LiveServer, start_live_server
from tests.helpers import eventually

CAP = 2


@pytest.fixture
async def capped(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        dev_mode=False,
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        max_streams_per_principal=CAP,
        rate_limit_runs="1000/minute",
    )
    # Slow tokens: a run's stream stays open for the length of the test.
    app = create_app(settings, ProviderRegistry([ScriptedProvider(token_delay=0.5)]))
    await container_of(app).start()
    yield app
    await container_of(app).shutdown()


@pytest.fixture
async def server(capped: FastAPI) -> AsyncIterator[LiveServer]:
    async with start_live_server(capped) as live:
        yield live


# The readers of open streams: one collected by the garbage collector would close its
# connection (and so its stream) behind the test's back.
READERS: list[AsyncIterator[bytes]] = []


async def _sse(stack: AsyncExitStack, http: httpx.AsyncClient, path: str) -> httpx.Response:
    response = await stack.enter_async_context(http.stream("GET", path))
    if response.status_code == 200:
        reader = response.aiter_bytes()
        READERS.append(reader)
        await anext(reader)  # the stream is open and sending
    return response


async def test_streams_past_the_cap_are_429_and_closing_one_makes_room(
    server: LiveServer, capped: FastAPI
) -> None:
    container: Container = container_of(capped)
    info, key = await container.api_keys.create("alice")
    _, other = await container.api_keys.create("bob")
    alice = f"key:{info.id}"
    async with httpx.AsyncClient(
        base_url=server.base_url, headers={"X-API-Key": key}, timeout=10
    ) as http:
        run = await http.post("/api/run", json={"topic": "tea", "max_turns": 10})
        assert run.status_code == 201, run.text
        path = f"/api/stream/{run.json()['id']}"
        first, rest = AsyncExitStack(), AsyncExitStack()
        async with first, rest:
            assert (await _sse(first, http, path)).status_code == 200
            assert (await _sse(rest, http, path)).status_code == 200
            assert container.stream_slots.open_for(alice) == CAP
            over = await _sse(rest, http, path)
            assert over.status_code == 429
            await over.aread()
            assert over.json()["code"] == "too_many_streams"
            assert int(over.headers["retry-after"]) > 0
            # A socket counts too: refused with the same error, closed with 1013.
            url = f"ws://127.0.0.1:{server.port}/api/ws/runs/{run.json()['id']}"
            async with connect(url, additional_headers={"X-API-Key": key}) as ws:
                frame = json.loads(await ws.recv())
                assert (frame["status"], frame["code"]) == (429, "too_many_streams")
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1013
            # Another principal has slots of its own.
            bob = await rest.enter_async_context(
                httpx.AsyncClient(base_url=server.base_url, headers={"X-API-Key": other})
            )
            theirs = await bob.post("/api/run", json={"topic": "tea", "max_turns": 10})
            bob_path = f"/api/stream/{theirs.json()['id']}"
            assert (await _sse(rest, bob, bob_path)).status_code == 200
            await first.aclose()  # alice closes one stream: its slot comes back
            await eventually(lambda: container.stream_slots.open_for(alice) == CAP - 1, 5)
            async with connect(url, additional_headers={"X-API-Key": key}) as ws:
                await ws.send(json.dumps({"type": "subscribe", "ref": 1}))
                assert json.loads(await ws.recv())["type"] == "ack"
                assert container.stream_slots.open_for(alice) == CAP
            await eventually(lambda: container.stream_slots.open_for(alice) == CAP - 1, 5)
        await eventually(lambda: container.stream_slots.open_for(alice) == 0, 5)
    READERS.clear()

"""Viewers joining at once are not refused as a database outage (issue 10, point 9).

Joining a stream costs at most one small query (none while this process runs the run),
an event is encoded once for all its viewers, and a pool with no free connection queues
the request or answers 503 `server_busy`, never `database_unavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

import symposia.container as container_module
import symposia.streaming.sse as sse_module
from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.domain.events import Event
from symposia.domain.models import Message, Run, RunStatus
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.services.runs import default_bots
from symposia.settings import Settings
from symposia.storage.db import DatabaseTimeouts, create_engine
from tests.conftest import make_settings
from tests.fakes.live import LiveServer
from tests.helpers import wait_for_event
from tests.sse import frames

VIEWERS = 500


@contextmanager
def counting_queries(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as client:
        yield client


async def _first_frame(http: httpx.AsyncClient, path: str) -> int:
    """Join `path` and read its first event; the status code of the answer."""
    async with http.stream("GET", path) as response:
        if response.status_code == 200:
            async for frame in frames(response):
                if frame.comment is None:
                    break
        return response.status_code


async def _start_stalled_run(http: httpx.AsyncClient, container: Container) -> str:
    response = await http.post(
        "/api/run",
        json={"topic": "t", "max_turns": 1, "bots": [{"model": "scripted/stall"}] * 2},
    )
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")  # its queries done
    return run_id


async def test_joining_a_run_live_here_costs_no_query(
    http: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["thinking", "..."], stall_after=1))
    run_id = await _start_stalled_run(http, container)
    with counting_queries(container.engine) as statements:
        assert await _first_frame(http, f"/api/stream/{run_id}") == 200
    assert statements == []


async def test_joining_a_finished_run_costs_one_small_query_then_none(
    http: httpx.AsyncClient, container: Container
) -> None:
    """A run this process does not run (finished, or run before a restart)."""
    run = Run(topic="t", bots=default_bots("scripted/echo", 100), max_turns=1, owner="dev")
    await container.run_repository.add(run)
    await container.run_repository.set_status(run.id, RunStatus.COMPLETED)
    with counting_queries(container.engine) as first:
        # The live log is gone: the transcript is read once to replay it.
        assert await _first_frame(http, f"/api/stream/{run.id}") == 200
    with counting_queries(container.engine) as second:
        assert await _first_frame(http, f"/api/stream/{run.id}") == 200
    assert len(first) <= 5  # the owner's row; the run, its bots, messages and edits to replay
    assert second == []  # the owner is remembered, the log is there
    other = Run(topic="t", bots=default_bots("scripted/echo", 100), max_turns=1, owner="dev")
    await container.run_repository.add(other)
    await container.log.create(other.id)  # its log is still held, its owner is not
    await container.log.append(other.id, "run_status", {"status": "running"})
    with counting_queries(container.engine) as join:
        assert await _first_frame(http, f"/api/stream/{other.id}") == 200
    assert len(join) == 1
    assert "messages" not in join[0]
    assert await _first_frame(http, "/api/stream/no-such-run") == 404


async def test_joining_a_reply_in_progress_costs_one_query(
    http: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["thinking", "..."], stall_after=1))
    conversation = (await http.post("/api/conversations", json={})).json()
    path = f"/api/conversations/{conversation['id']}"
    question = await http.post(f"{path}/messages", json={"message": "hi"})
    assert await _first_frame(http, f"{path}/stream?model=scripted/stall") == 200  # starts it
    stream_id = f"reply-{question.json()['id']}"
    await wait_for_event(container, stream_id, lambda e: e.type == "token")  # its queries done
    with counting_queries(container.engine) as statements:
        assert await _first_frame(http, f"{path}/stream") == 200
    assert len(statements) == 1
    assert await _first_frame(http, "/api/conversations/nope/stream") == 404


class _Viewer:
    """One raw-socket SSE reader: the ids it got, or the status it was refused with."""

    def __init__(self, port: int, path: str) -> None:
        self.port = port
        self.path = path
        self.status = 0
        self.ids: list[int] = []

    async def watch(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
            )
            body = await reader.read(-1)
        finally:
            writer.close()
        self.status = int(body.split(b" ", 2)[1])
        self.ids = [int(line[4:]) for line in body.split(b"\n") if line.startswith(b"id: ")]


async def test_viewers_of_a_stored_run_at_once_share_one_replay(
    live: LiveServer, container: Container
) -> None:
    """The live log is gone (a restart, or retention): the transcript is read once."""
    run = Run(topic="t", bots=default_bots("scripted/echo", 100), max_turns=2, owner="dev")
    await container.run_repository.add(run)
    for turn in range(2):
        said = Message("assistant", f"Bot {turn + 1}", f"turn {turn}", bot_index=turn, turn=turn)
        await container.run_repository.add_message(run.id, said)
    await container.run_repository.set_status(run.id, RunStatus.COMPLETED)
    viewers = [_Viewer(live.port, f"/api/stream/{run.id}") for _ in range(30)]
    with counting_queries(container.engine) as statements:
        await asyncio.wait_for(asyncio.gather(*(v.watch() for v in viewers)), 60)
    assert len([s for s in statements if "FROM messages" in s]) == 1
    expected = viewers[0].ids
    assert expected == list(range(1, 10))  # status, 3 per turn, status, done
    assert all(v.status == 200 and v.ids == expected for v in viewers)


class TestOnTheEmbeddedDefault:
    """Many viewers at once, on the SQLite file a server uses out of the box."""

    @pytest.fixture
    def settings(self) -> Settings:
        """The embedded default: a SQLite file."""
        return make_settings()

    async def test_hundreds_of_viewers_joining_one_live_run_at_once(
        self,
        live: LiveServer,
        http: httpx.AsyncClient,
        container: Container,
        scripted: ScriptedProvider,
    ) -> None:
        scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(40)], delay=0.02))
        response = await http.post(
            "/api/run",
            json={"topic": "t", "max_turns": 2, "bots": [{"model": "scripted/paced"}] * 2},
        )
        run_id = response.json()["id"]
        viewers = [_Viewer(live.port, f"/api/stream/{run_id}") for _ in range(VIEWERS)]
        with counting_queries(container.engine) as statements:
            await asyncio.wait_for(asyncio.gather(*(v.watch() for v in viewers)), 90)
        assert len(statements) < VIEWERS // 10  # the run's own queries; none per viewer
        assert [v.status for v in viewers] == [200] * VIEWERS
        expected = viewers[0].ids
        assert expected == list(range(1, len(expected) + 1))
        assert len(expected) > 80  # the turns' tokens and the run's bookkeeping
        assert all(v.ids == expected for v in viewers)

    async def test_an_event_is_encoded_once_for_all_its_viewers(
        self,
        live: LiveServer,
        http: httpx.AsyncClient,
        scripted: ScriptedProvider,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        encoded: list[int] = []
        real = sse_module.encode

        def counted(event: Event) -> bytes:
            encoded.append(event.seq)
            return real(event)

        monkeypatch.setattr(sse_module, "encode", counted)
        scripted.add_script("paced", Script(chunks=[f" w{i}" for i in range(20)], delay=0.01))
        response = await http.post(
            "/api/run",
            json={"topic": "t", "max_turns": 2, "bots": [{"model": "scripted/paced"}] * 2},
        )
        run_id = response.json()["id"]
        viewers = [_Viewer(live.port, f"/api/stream/{run_id}") for _ in range(20)]
        await asyncio.wait_for(asyncio.gather(*(v.watch() for v in viewers)), 60)
        assert all(v.ids == viewers[0].ids for v in viewers)
        assert sorted(encoded) == viewers[0].ids  # each event once, not once per viewer


@pytest.fixture
async def small_pool_app(
    database_url: str, providers: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    """The app on a pool of one connection that waits half a second for it."""

    def one_connection(url: str | None, timeouts: DatabaseTimeouts | None = None) -> AsyncEngine:
        return create_engine(url, None, pool_size=1, max_overflow=0, pool_timeout=0.5)

    monkeypatch.setattr(container_module, "create_engine", one_connection)
    application = create_app(make_settings(database_url=database_url), providers)
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


async def test_an_exhausted_pool_queues_then_answers_server_busy(
    small_pool_app: FastAPI,
) -> None:
    container = container_of(small_pool_app)
    transport = httpx.ASGITransport(app=small_pool_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as client:
        run = Run(topic="t", bots=default_bots("scripted/echo", 10), max_turns=1, owner="dev")
        await container.run_repository.add(run)
        async with container.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            busy = await client.get(f"/api/run/{run.id}")
            queued = asyncio.create_task(client.get(f"/api/run/{run.id}"))
            await asyncio.sleep(0.1)
        assert (await queued).status_code == 200  # it waited for the connection to come back
    assert busy.status_code == 503
    assert busy.json()["code"] == "server_busy"
    assert busy.headers["Retry-After"] == "1"

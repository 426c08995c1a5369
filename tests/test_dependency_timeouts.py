"""Issue 21 #7: a black-holed PostgreSQL (connections accepted or kept, never answered)
hung `POST /api/run` and chat for 60 s and `GET /api/runs` for good, while `/health`
said 503 in 2 s. Every dependency is bounded now: with the database or the Redis event
log black-holed behind a fault proxy, requests answer 503 with `Retry-After` within the
connect + statement (command) timeouts, and work again once the route is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.events import redis as redis_log
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.settings import Settings
from symposia.storage.db import DatabaseTimeouts
from tests.conftest import make_settings
from tests.fakes.databases import PG_HOST, PG_PORT, PG_USER, truncate
from tests.fakes.fault_proxy import FaultProxy
from tests.fakes.redis_server import REDIS_URL, require_redis

# Scheduling on a loaded test machine, on top of the configured timeouts.
SLACK_SECONDS = 1.5
BOTS = [{"name": n, "model": "scripted/echo"} for n in ("Ada", "Bert")]
RUN = {"topic": "t", "bots": BOTS, "max_turns": 2}
CHAT = {"message": "hello", "model": "scripted/echo"}


@dataclass
class Outcome:
    status: int
    code: str
    retry_after: str | None
    seconds: float


async def _timed(
    client: httpx.AsyncClient, method: str, url: str, limit: float, **kw: Any
) -> Outcome:
    """The request's status, error code and Retry-After, and how long it took (a request
    still unanswered at `limit` is a failure of the test, not a hang of it)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            response = await client.request(method, url, **kw)
    except TimeoutError:
        raise AssertionError(f"{method} {url}: no answer after {limit:.1f} s") from None
    code = response.json().get("code", "") if response.status_code >= 400 else ""
    seconds = time.monotonic() - started
    return Outcome(response.status_code, code, response.headers.get("Retry-After"), seconds)


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, ProviderRegistry([ScriptedProvider(token_delay=0.0)]))
    container = container_of(app)
    await container.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            yield app, c
    finally:
        await container.shutdown()


async def _black_holed(
    client: httpx.AsyncClient, requests: list[tuple[str, str, dict[str, Any]]], bound: float
) -> list[Outcome]:
    """The requests at once (each on a connection of its own), while the proxy is dark."""
    return await asyncio.gather(
        *(_timed(client, method, url, bound + 10, **kw) for method, url, kw in requests)
    )


def _assert_bounded(outcomes: list[Outcome], code: str, bound: float) -> None:
    for outcome in outcomes:
        assert (outcome.status, outcome.code) == (503, code), outcomes
        assert int(outcome.retry_after or 0) > 0, outcomes
        assert outcome.seconds <= bound + SLACK_SECONDS, outcomes


@pytest.fixture
async def postgres_behind_proxy(postgres_session_db: str) -> AsyncIterator[tuple[FaultProxy, str]]:
    await truncate(postgres_session_db)
    async with FaultProxy(PG_HOST, PG_PORT) as proxy:
        url = f"postgresql://{PG_USER}@127.0.0.1:{proxy.listen_port}/{postgres_session_db}"
        yield proxy, url


async def test_a_black_holed_database_is_a_503_in_bounded_time(
    postgres_behind_proxy: tuple[FaultProxy, str],
) -> None:
    proxy, url = postgres_behind_proxy
    settings = make_settings(database_url=url)  # the default timeouts: the bound we document
    bound = settings.database_connect_timeout_seconds + settings.database_statement_timeout_seconds
    assert bound <= 5
    async with _serving(settings) as (_, client):
        # Pooled connections exist: the black hole swallows them mid-conversation.
        assert (await client.get("/api/runs")).status_code == 200
        proxy.set_mode("blackhole")
        outcomes = await _black_holed(
            client,
            [
                ("GET", "/api/runs", {}),
                ("POST", "/api/run", {"json": RUN}),
                ("POST", "/api/chat/stream", {"json": CHAT}),
            ],
            bound,
        )
        _assert_bounded(outcomes, "database_unavailable", bound)
        proxy.set_mode("pass")  # the route is back: so is the service
        assert (await client.post("/api/run", json=RUN)).status_code == 201


async def test_a_black_holed_event_log_is_a_503_in_bounded_time(tmp_path: Path) -> None:
    await require_redis()
    host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
    async with FaultProxy(host, int(port)) as proxy:
        settings = make_settings(
            database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
            redis_url=f"redis://127.0.0.1:{proxy.listen_port}/0",
            event_log_retention_seconds=10,
        )
        bound = settings.redis_connect_timeout_seconds + settings.redis_timeout_seconds
        assert bound <= 5
        async with _serving(settings) as (_, client):
            created = await client.post("/api/run", json=RUN)
            assert created.status_code == 201, created.text
            watched = f"/api/stream/{created.json()['id']}"
            assert (await client.get(watched)).status_code == 200
            proxy.set_mode("blackhole")
            outcomes = await _black_holed(
                client,
                [
                    ("POST", "/api/run", {"json": RUN}),
                    ("POST", "/api/chat/stream", {"json": CHAT}),
                    ("GET", watched, {}),
                ],
                bound,
            )
            _assert_bounded(outcomes, "event_log_unavailable", bound)
            proxy.set_mode("pass")
            assert (await client.get(watched)).status_code == 200


def test_the_defaults_of_the_settings_are_those_of_the_parts() -> None:
    """Engines and logs built without settings (tools, tests) wait as a server does."""
    settings = make_settings()
    assert DatabaseTimeouts.of(settings) == DatabaseTimeouts()
    assert settings.redis_connect_timeout_seconds == redis_log.CONNECT_TIMEOUT_SECONDS
    assert settings.redis_timeout_seconds == redis_log.COMMAND_TIMEOUT_SECONDS

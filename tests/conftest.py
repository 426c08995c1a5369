"""Shared fixtures: settings for tests, an app wired with the scripted provider, clients.

A guard fails any test that opens a connection beyond loopback: tests never use the network.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.settings import Settings
from tests.fakes.databases import PostgresDatabases, pg_url, truncate
from tests.fakes.live import LiveServer, start_live_server
from tests.fakes.provider_server import FakeProviderServer

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise RuntimeError(f"test tried a real network connection to {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


def _sqlite_driver_threads() -> set[threading.Thread]:
    """aiosqlite's worker threads: one per open connection, ending when it is closed."""
    return {
        thread
        for thread in threading.enumerate()
        if thread.name.endswith("(_connection_worker_thread)")
    }


@pytest.fixture(autouse=True)
def _sqlite_connections_closed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves a SQLite connection open (an engine not disposed, a
    connection still checked out by a task its shutdown did not wait for): its driver
    thread would answer the test's closed loop later, during whichever test runs then.
    A test on a module's loop (and its module's engine) is not checked."""
    marker = request.node.get_closest_marker("asyncio")
    if marker is not None and marker.kwargs.get("loop_scope", "function") != "function":
        yield
        return
    before = _sqlite_driver_threads()
    yield
    left = []
    for thread in _sqlite_driver_threads() - before:
        thread.join(0.5)  # a closed connection's thread ends just after its close
        if thread.is_alive():
            left.append(thread.name)
    if left:
        pytest.fail(f"SQLite connections left open by this test: {left}", pytrace=False)


# Settings a developer's environment may hold that no test may inherit.
ISOLATED_ENV = (
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_API_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "BASIC_AUTH_USER",
    "BASIC_AUTH_PW_HASH",
    "DEFAULT_MODEL",
    "DEV_MODE",
    # The seeds' settings (seed_settings, env_check): a shell's DEBUG or VERSION too.
    "API_KEY",
    "API_KEYS",
    "LLM_PROVIDER",
    "MODEL_NAME",
    "BEDROCK_MODEL_ID",
    "API_HOST",
    "API_PORT",
    "ENVIRONMENT",
    "APP_ENV",
    "DEBUG",
    "VERSION",
    "LOG_FILE",
    # Tracing is on when an OTLP endpoint is named (observability/tracing.py).
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the settings they set: no developer .env, no real keys."""
    monkeypatch.chdir(tmp_path)
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "dev_mode": True,
        "scripted_token_delay": 0.0,
        "sse_heartbeat_seconds": 15,
        "default_model": "scripted/echo",
        "shutdown_grace_seconds": 2,
        # A chat's title is one more model call: tests that count calls ask for it.
        "chat_titles": False,
        # httpx's ASGITransport clients use http://symposia.test, Starlette's TestClient
        # (schemathesis) testserver; live servers 127.0.0.1, which is always allowed.
        "allowed_hosts": ["symposia.test", "testserver"],
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def settings_from_dotenv(dotenv: str, **overrides: Any) -> Settings:
    """Settings as a seed's user gets them: its `.env` written to the working directory
    (the test's tmp_path) and read by Settings, plus only what the test harness needs."""
    Path(".env").write_text(dotenv)
    base: dict[str, Any] = {
        "scripted_token_delay": 0.0,
        "shutdown_grace_seconds": 2,
        "allowed_hosts": ["symposia.test", "testserver"],
        "llm_retry_base_seconds": 0.01,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def postgres_session_db(postgres: PostgresDatabases) -> str:
    return postgres.create()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every storage-backed test runs on both: a SQLite file, and the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'symposia.db'}"
        return
    name = request.getfixturevalue("postgres_session_db")
    await truncate(name)
    yield pg_url(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def fake_provider() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer() as server:
        yield server
        assert server.handler_errors == []


def remote_settings(server: FakeProviderServer, **overrides: Any) -> Settings:
    """Settings whose OpenAI, OpenRouter and Anthropic providers all point at the fake."""
    values: dict[str, Any] = {
        "openai_api_key": "sk-test-openai",
        "openai_base_url": server.openai_base_url,
        "openrouter_api_key": "sk-or-test",
        "openrouter_base_url": server.openai_base_url,
        "app_url": "https://chat.example.test",
        "app_title": "Symposia Tests",
        "anthropic_api_key": "sk-ant-test",
        "anthropic_base_url": server.anthropic_base_url,
        "llm_retry_base_seconds": 0.01,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def scripted() -> ScriptedProvider:
    return ScriptedProvider(token_delay=0.0)


@pytest.fixture
def providers(settings: Settings, scripted: ScriptedProvider) -> ProviderRegistry:
    registry = default_providers(settings)
    registry.register(scripted)
    return registry


@pytest.fixture
async def app(settings: Settings, providers: ProviderRegistry) -> AsyncIterator[FastAPI]:
    application = create_app(settings, providers)
    container = container_of(application)
    await container.start()  # what the lifespan does: migrations, interrupted runs
    yield application
    await container.shutdown()


@pytest.fixture
def container(app: FastAPI) -> Container:
    return container_of(app)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[LiveServer]:
    """The app under a real uvicorn on a free loopback port, in the test's event loop."""
    async with start_live_server(app) as server:
        yield server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """llama-cpp-python opens two /dev/null files at import and never closes them."""
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()

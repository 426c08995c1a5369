"""Canary secrets: every secret setting holds a recognisable value, a varied workload runs
(runs, chat, conversations, `/v1` streamed and not, upstreams that fail and echo the key
they received, wrong passwords and keys), and no log line, response body or stored row
may contain any of them.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import MetaData, select

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.observability.logging import configure_logging
from symposia.security.passwords import hash_password
from symposia.settings import Settings, SettingsError, load_settings
from tests.conftest import make_settings, remote_settings
from tests.fakes.live import free_port
from tests.fakes.provider_server import (
    FakeProviderServer,
    Received,
    Reply,
    Route,
    anthropic_error_body,
    openai_error_body,
)

CANARY = "CANARY7f3a"
OPENAI_KEY = f"sk-{CANARY}-openai-0123456789abcdef"
OPENROUTER_KEY = f"sk-or-v1-{CANARY}-openrouter-0123456789"
ANTHROPIC_KEY = f"sk-ant-api03-{CANARY}-anthropic-0123456789"
COMPATIBLE_KEY = f"{CANARY}-compatible-0123456789abcdef"
PASSWORD = f"{CANARY}-basic-password"
PASSWORD_HASH = hash_password(PASSWORD, rounds=4)
DB_PASSWORD = f"{CANARY}-db-password"
AWS_SECRET = f"{CANARY}-aws-secret-access-key"
AWS_KEY_ID = f"AKIA{CANARY}EXAMPLE"
SESSION_SECRET = f"{CANARY}-session-secret-0123456789"
OIDC_SECRET = f"{CANARY}-oidc-client-secret"
REDIS_PASSWORD = f"{CANARY}-redis-password"
USER = "canary-user"

OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-haiku-4-5"
OPENROUTER_MODEL = "openrouter/gpt-4o"
COMPATIBLE_MODEL = "acme/gpt-4o"


class EchoingProviderServer(FakeProviderServer):
    """The fake provider, made to answer some requests with an error that quotes the key it
    received, as OpenAI's "Incorrect API key provided: sk-..." does."""

    def __init__(self) -> None:
        super().__init__()
        self.echo: dict[str, list[int]] = {"openai": [], "anthropic": []}

    def echo_next(self, route: Route, *statuses: int) -> None:
        self.echo[route].extend(statuses)

    async def _completion(self, conn: Any, route: Route, request: Received) -> None:
        if self.echo[route]:
            status = self.echo[route].pop(0)
            key = request.headers.get("x-api-key") or request.headers.get("authorization")
            message = f"Incorrect API key provided: {key}. You can find your API key at ..."
            body = (
                anthropic_error_body(status, message)
                if route == "anthropic"
                else openai_error_body(status, message)
            )
            self._queues[route].appendleft(Reply(status=status, error_body=body))
        await super()._completion(conn, route, request)


@dataclass
class Seen:
    """Everything the workload got back, to be searched for canaries."""

    bodies: list[str] = field(default_factory=list)

    def add(self, response: httpx.Response) -> httpx.Response:
        self.bodies.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG", json_lines=True, stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def echoing() -> AsyncIterator[EchoingProviderServer]:
    async with EchoingProviderServer() as server:
        yield server


def _with_password(database_url: str) -> str:
    """The PostgreSQL test server trusts loopback, so a password is accepted and ignored."""
    if database_url.startswith("postgresql://postgres@"):
        return database_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    return database_url


def canary_settings(server: FakeProviderServer, database_url: str) -> Settings:
    return remote_settings(
        server,
        openai_api_key=OPENAI_KEY,
        openrouter_api_key=OPENROUTER_KEY,
        anthropic_api_key=ANTHROPIC_KEY,
        openai_compatible={"acme": {"base_url": server.openai_base_url, "api_key": COMPATIBLE_KEY}},
        dev_mode=False,
        basic_auth_user=USER,
        basic_auth_pw_hash=PASSWORD_HASH,
        database_url=_with_password(database_url),
        session_secret=SESSION_SECRET,
        max_concurrent_runs_per_principal=50,
        rate_limit_runs="1000/minute",
        rate_limit_chat="1000/minute",
        default_model=OPENAI_MODEL,
        llm_max_attempts=2,
    )


@pytest.fixture
async def canary_app(
    echoing: EchoingProviderServer,
    database_url: str,
    log_text: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[FastAPI]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    settings = canary_settings(echoing, database_url)
    application = create_app(settings, default_providers(settings))
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


async def _stream(client: httpx.AsyncClient, seen: Seen, method: str, url: str, **kw: Any) -> None:
    async with client.stream(method, url, **kw) as response:
        await response.aread()
        seen.add(response)


async def _runs(client: httpx.AsyncClient, seen: Seen, auth: dict[str, str]) -> None:
    bots = [
        {"name": "O", "model": OPENAI_MODEL},
        {"name": "A", "model": ANTHROPIC_MODEL},
        {"name": "R", "model": OPENROUTER_MODEL},
        {"name": "C", "model": COMPATIBLE_MODEL},
    ]
    for topic in ("a calm run", "a run whose upstreams fail"):
        run = seen.add(
            await client.post(
                "/api/run",
                headers=auth,
                json={"topic": topic, "bots": bots, "max_turns": 4},
            )
        )
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        await _stream(client, seen, "GET", f"/api/stream/{run_id}", headers=auth)
        seen.add(await client.get(f"/api/run/{run_id}", headers=auth))
        seen.add(await client.get(f"/api/export/{run_id}.json", headers=auth))
    seen.add(await client.get("/api/runs", headers=auth))


async def _chat(client: httpx.AsyncClient, seen: Seen, auth: dict[str, str]) -> None:
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL, COMPATIBLE_MODEL, "scripted/echo"):
        body = {"message": f"hello {model}", "model": model}
        await _stream(client, seen, "POST", "/api/chat/stream", headers=auth, json=body)
    created = seen.add(
        await client.post(
            "/api/conversations", headers=auth, json={"default_model": ANTHROPIC_MODEL}
        )
    )
    conversation = created.json()["id"]
    for _ in range(2):
        seen.add(
            await client.post(
                f"/api/conversations/{conversation}/messages",
                headers=auth,
                json={"message": "and again"},
            )
        )
        await _stream(
            client, seen, "GET", f"/api/conversations/{conversation}/stream", headers=auth
        )
    seen.add(await client.get(f"/api/conversations/{conversation}/messages", headers=auth))
    seen.add(await client.get("/api/conversations", headers=auth))


async def _openai(client: httpx.AsyncClient, seen: Seen, bearer: dict[str, str]) -> None:
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL, OPENROUTER_MODEL, COMPATIBLE_MODEL):
        for stream in (False, True):
            for conversation in ({}, {"X-Symposia-Conversation": "new"}):
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": "hi"}],
                    "stream": stream,
                }
                headers = {**bearer, **conversation}
                await _stream(
                    client, seen, "POST", "/v1/chat/completions", headers=headers, json=body
                )
    seen.add(await client.get("/v1/models", headers=bearer))
    seen.add(await client.get("/api/models", headers=bearer))


async def _wrong_credentials(client: httpx.AsyncClient, seen: Seen, key: str) -> None:
    wrong_password = base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode()
    wrong_user = base64.b64encode(f"someone:{PASSWORD}".encode()).decode()
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for headers in (
        {"Authorization": f"Basic {wrong_password}"},
        {"Authorization": f"Basic {wrong_user}"},
        {"X-API-Key": tampered},
        {"Authorization": f"Bearer {tampered}"},
        {"Authorization": f"Bearer {OPENAI_KEY}"},  # a provider key presented to us
    ):
        seen.add(await client.get("/api/runs", headers=headers))
        seen.add(await client.post("/v1/chat/completions", headers=headers, json={}))


async def _stored_rows(container: Container) -> list[str]:
    """Every row of every table, as text."""
    rows: list[str] = []
    async with container.engine.connect() as connection:
        metadata = MetaData()
        await connection.run_sync(metadata.reflect)
        assert {"runs", "messages", "conversations", "api_keys"} <= set(metadata.tables)
        for table in metadata.sorted_tables:
            result = await connection.execute(select(table))
            rows.extend(f"{table.name}: {tuple(row)}" for row in result)
    return rows


def _echo_failures(server: EchoingProviderServer) -> None:
    """Each upstream, in turn, refuses a call quoting the key it got (401, not retried;
    500, retried), and streams an in-stream error quoting it."""
    for route in ("openai", "anthropic"):
        server.echo_next(route, 401, 500, 500, 400)  # type: ignore[arg-type]


async def test_no_secret_reaches_a_log_a_response_or_a_row(
    canary_app: FastAPI, echoing: EchoingProviderServer, log_text: io.StringIO
) -> None:
    container = container_of(canary_app)
    _, api_key = await container.api_keys.create("canary")
    secrets = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENROUTER_API_KEY": OPENROUTER_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "OPENAI_COMPATIBLE api_key": COMPATIBLE_KEY,
        "BASIC_AUTH password": PASSWORD,
        "BASIC_AUTH_PW_HASH": PASSWORD_HASH,
        "DATABASE_URL password": DB_PASSWORD,
        "SESSION_SECRET": SESSION_SECRET,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "API key": api_key,
        # `sym_<id>_<secret>`: the secret is urlsafe base64, which may hold `_` itself.
        "API key secret": api_key.split("_", 2)[2],
    }
    basic = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    seen = Seen()
    transport = httpx.ASGITransport(app=canary_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as client:
        await _runs(client, seen, basic)
        await _chat(client, seen, {"X-API-Key": api_key})
        await _openai(client, seen, {"Authorization": f"Bearer {api_key}"})
        _echo_failures(echoing)
        await _runs(client, seen, {"X-API-Key": api_key})
        _echo_failures(echoing)
        await _chat(client, seen, basic)
        for _ in range(3):
            _echo_failures(echoing)
            await _openai(client, seen, {"Authorization": f"Bearer {api_key}"})
        for route, key in (("openai", OPENAI_KEY), ("anthropic", ANTHROPIC_KEY)):
            error = {"type": "invalid_request_error", "message": f"bad key {key}"}
            echoing.enqueue(route, Reply(error_event=error), Reply(error_event=error))
        await _openai(client, seen, {"Authorization": f"Bearer {api_key}"})
        await _wrong_credentials(client, seen, api_key)
        seen.add(await client.get("/metrics"))
        seen.add(await client.get("/health"))

    # The workload did reach every upstream, and some calls failed quoting the key.
    received = " ".join(
        str(r.headers.get(name))
        for r in echoing.requests
        for name in ("authorization", "x-api-key")
    )
    for key in (OPENAI_KEY, OPENROUTER_KEY, ANTHROPIC_KEY, COMPATIBLE_KEY):
        assert key in received
    statuses = [int(body.split(" ", 1)[0]) for body in seen.bodies]
    assert statuses.count(200) > 20
    assert 401 in statuses
    rows = await _stored_rows(container)
    logs = log_text.getvalue()
    assert '"event": "request"' in logs  # the capture works: request lines are there

    leaks: dict[tuple[str, str], list[str]] = {}
    for name, value in secrets.items():
        for where, texts in (("log", [logs]), ("response", seen.bodies), ("row", rows)):
            for text in texts:
                at = text.find(value)
                if at >= 0:
                    leaks.setdefault((name, where), []).append(text[max(0, at - 80) : at + 40])
    report = [
        f"{name} in {len(found)} {where}(s), e.g. ...{found[0]}..."
        for (name, where), found in leaks.items()
    ]
    assert not leaks, "secrets leaked:\n" + "\n".join(report)


def _canary_env(**invalid: str) -> dict[str, str]:
    """Every secret setting holding a canary, valid as far as each goes, plus `invalid`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENROUTER_API_KEY": OPENROUTER_KEY,
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "OPENAI_COMPATIBLE": f'{{"acme": {{"base_url": "http://127.0.0.1:9/v1", '
        f'"api_key": "{COMPATIBLE_KEY}"}}}}',
        "BASIC_AUTH_USER": USER,
        "BASIC_AUTH_PW_HASH": PASSWORD_HASH,
        "SESSION_SECRET": SESSION_SECRET,
        "OIDC_ISSUER": "https://accounts.example.test",
        "OIDC_CLIENT_ID": "symposia",
        "OIDC_CLIENT_SECRET": OIDC_SECRET,
        # Nothing listens on port 1: the settings are refused before anything connects.
        "DATABASE_URL": f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:1/symposia",
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",
        "EVENT_LOG": "memory",
    }
    if "PYTHONPATH" in os.environ:  # the code under test, wherever it is checked out
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(invalid)
    return env


RESERVED_NAME = f'{{"openai": {{"base_url": "x", "api_key": "{COMPATIBLE_KEY}"}}}}'
NO_BASE_URL = f'{{"acme": {{"api_key": "{COMPATIBLE_KEY}"}}}}'
NOT_JSON = f'{{"acme": {{"api_key": "{COMPATIBLE_KEY}"'


@pytest.mark.parametrize(
    ("invalid", "named"),
    [
        # A check across settings: pydantic's input for it is every setting given.
        ({"RUN_LEASE_SECONDS": "4", "RUN_HEARTBEAT_SECONDS": "3"}, "RUN_LEASE_SECONDS"),
        ({"OIDC_CLIENT_ID": ""}, "OIDC_CLIENT_ID"),
        # The setting that holds a key is itself wrong, whole or in part.
        ({"OPENAI_COMPATIBLE": RESERVED_NAME}, "OPENAI_COMPATIBLE"),
        ({"OPENAI_COMPATIBLE": NO_BASE_URL}, "OPENAI_COMPATIBLE[acme].base_url"),
        ({"OPENAI_COMPATIBLE": NOT_JSON}, "OPENAI_COMPATIBLE"),
        ({"BASIC_AUTH_PW_HASH": PASSWORD}, "BASIC_AUTH_PW_HASH"),
        # A plain setting wrong among the secrets.
        ({"PORT": "eighty"}, "PORT"),
    ],
)
def test_settings_errors_name_the_variable_never_a_secret(
    invalid: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21 #8: a refused setting printed `got {...}` with every key, the session and
    OIDC secrets and the database password, into every container's and systemd's log."""
    for name, value in _canary_env(**invalid).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert named in str(refused.value)
    assert CANARY not in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    ("invalid", "named"),
    [
        ({"RUN_LEASE_SECONDS": "4", "RUN_HEARTBEAT_SECONDS": "3"}, "RUN_LEASE_SECONDS"),
        # Valid settings, and a Redis event log that cannot be reached.
        ({"EVENT_LOG": "redis"}, "REDIS_URL"),
    ],
)
def test_start_up_refusals_print_no_secret(
    invalid: dict[str, str], named: str, tmp_path: Path
) -> None:
    """`symposia serve` itself, refusing to start: its whole output, not only the line."""
    result = subprocess.run(
        [sys.executable, "-m", "symposia", "serve"],
        env=_canary_env(**invalid),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert named in result.stderr
    assert "Traceback" not in output
    assert CANARY not in output, output


async def test_no_secret_of_a_websocket_handshake_reaches_a_debug_log(
    database_url: str, log_text: io.StringIO
) -> None:
    """`serve`'s uvicorn at LOG_LEVEL=DEBUG: a socket opened with `X-API-Key`, one with the
    session cookie and one whose first message carries the key; neither the key nor the
    cookie may be logged (uvicorn gives the `websockets` library its own logger, and that
    library dumps handshake headers and frames at DEBUG)."""
    from websockets.asyncio.client import connect

    from symposia.security.sessions import COOKIE_NAME
    from symposia.server import server_config
    from tests.fakes.live import free_port
    from tests.test_sessions import sign_in

    settings = make_settings(
        dev_mode=False, database_url=database_url, log_level="DEBUG", port=free_port()
    )
    application = create_app(settings, default_providers(settings))
    container = container_of(application)
    await container.start()
    _, key = await container.api_keys.create("canary")
    server = uvicorn.Server(server_config(application, settings))
    serving = asyncio.create_task(server.serve())
    base = f"127.0.0.1:{settings.port}"
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://{base}") as browser:
            assert (await sign_in(browser, method="api_key", api_key=key)).status_code == 303
            cookie = browser.cookies[COOKIE_NAME]
        url = f"ws://{base}/api/ws/runs/nope"
        for headers in (
            {"X-API-Key": key},
            {"Cookie": f"{COOKIE_NAME}={cookie}", "Origin": f"http://{base}"},
            None,
        ):
            async with connect(url, additional_headers=headers, open_timeout=5) as ws:
                if headers is None:
                    await ws.send(json.dumps({"type": "auth", "api_key": key, "ref": 1}))
                    assert json.loads(await ws.recv())["type"] == "ack"
                await ws.send(json.dumps({"type": "subscribe", "ref": 2}))
                assert json.loads(await ws.recv())["status"] == 404
    finally:
        server.should_exit = True
        await serving
        await container.shutdown()
    logs = log_text.getvalue()
    assert "WebSocket /api/ws/runs/nope" in logs  # uvicorn's own lines are there
    for name, value in (("API key", key), ("secret", key.split("_", 2)[2]), ("cookie", cookie)):
        assert value not in logs, f"the {name} was logged"

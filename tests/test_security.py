"""Authentication, ownership, rate limits, resource limits, CORS, logs, metrics, health."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.observability.logging import configure_logging
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.security.api_keys import parse_key
from symposia.security.auth import StartupRefusedError, check_exposure
from symposia.security.client_address import client_address, parse_networks
from symposia.security.passwords import hash_password
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import free_port, serve_process, wait_until_healthy
from tests.fakes.redis_server import REDIS_URL, require_redis
from tests.helpers import wait_done

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD, rounds=4)  # cheap rounds: tests only


def basic(user: str | bytes, password: str | bytes) -> dict[str, str]:
    raw = (
        (user.encode() if isinstance(user, str) else user)
        + b":"
        + (password.encode() if isinstance(password, str) else password)
    )
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def secret_of(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None, key
    return parsed[1]


def secure_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dev_mode": False,
        "basic_auth_user": "alice",
        "basic_auth_pw_hash": PASSWORD_HASH,
        "database_url": database_url,
        "max_concurrent_runs_per_principal": 50,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def secure_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def secure_app(
    database_url: str, secure_overrides: dict[str, Any], scripted: ScriptedProvider
) -> AsyncIterator[FastAPI]:
    settings = secure_settings(database_url, **secure_overrides)
    application = create_app(settings, ProviderRegistry([scripted]))
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


@pytest.fixture
def secure(secure_app: FastAPI) -> Container:
    return container_of(secure_app)


@pytest.fixture
async def http(secure_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=secure_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c


async def _key(secure: Container, name: str = "k") -> dict[str, str]:
    _, key = await secure.api_keys.create(name)
    return {"X-API-Key": key}


PROTECTED = [
    ("GET", "/api/runs"),
    ("GET", "/api/conversations"),
    ("GET", "/api/models"),
    ("POST", "/api/run"),
    ("POST", "/api/chat/stream"),
    ("GET", "/api/run/x"),
    ("GET", "/api/stream/x"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_api_routes_need_credentials(http: httpx.AsyncClient, method: str, path: str) -> None:
    response = await http.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/health", "/metrics", "/docs", "/openapi.json"])
async def test_operational_routes_stay_open(http: httpx.AsyncClient, path: str) -> None:
    assert (await http.get(path)).status_code == 200


async def test_basic_auth(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/runs", headers=basic("alice", PASSWORD))).status_code == 200
    bad = [
        basic("alice", "wrong"),
        basic("bob", PASSWORD),
        basic("ålice", PASSWORD),
        basic("alice", "x" * 100),
        basic("alice", "ü" * 40),
        basic(b"\xff\xfe", PASSWORD),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
    ]
    for headers in bad:
        response = await http.get("/api/runs", headers=headers)
        assert response.status_code == 401, headers
        assert "www-authenticate" in response.headers


async def test_api_keys_by_header_and_bearer(http: httpx.AsyncClient, secure: Container) -> None:
    info, key = await secure.api_keys.create("laptop")
    assert (await http.get("/api/runs", headers={"X-API-Key": key})).status_code == 200
    bearer = {"Authorization": f"Bearer {key}"}
    assert (await http.get("/api/runs", headers=bearer)).status_code == 200
    wrong_same_length = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for presented in (wrong_same_length, "sym_short", "x" * 500, ""):
        response = await http.get("/api/runs", headers={"X-API-Key": presented})
        assert response.status_code == 401, presented
    assert await secure.api_keys.revoke(info.id)
    assert (await http.get("/api/runs", headers={"X-API-Key": key})).status_code == 401
    listed = await secure.api_keys.list()
    assert [(k.id, k.revoked_at is not None) for k in listed] == [(info.id, True)]
    assert secret_of(key) not in repr(listed)


@pytest.mark.parametrize("secure_overrides", [{"metrics_public": False}])
async def test_metrics_can_be_closed(http: httpx.AsyncClient) -> None:
    assert (await http.get("/metrics")).status_code == 401
    assert (await http.get("/metrics", headers=basic("alice", PASSWORD))).status_code == 200


async def test_another_principals_objects_are_404_everywhere(
    http: httpx.AsyncClient, secure: Container
) -> None:
    alice, bob = await _key(secure, "alice"), await _key(secure, "bob")
    bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
    run_body = {"topic": "t", "bots": bots, "max_turns": 1}
    for path, body in (("/api/run", run_body), ("/api/conversations", {"title": "mine"})):
        claimed = await http.post(path, headers=alice, json={**body, "owner": "bob"})
        assert claimed.status_code == 422  # no body names its owner
        assert claimed.json()["field"] == "owner"
    run_id = (await http.post("/api/run", headers=alice, json=run_body)).json()["id"]
    await wait_done(secure, run_id)
    conversation = (
        await http.post("/api/conversations", headers=alice, json={"title": "mine"})
    ).json()
    await http.post(
        f"/api/conversations/{conversation['id']}/messages", headers=alice, json={"message": "hi"}
    )
    async with http.stream(
        "GET", f"/api/conversations/{conversation['id']}/stream", headers=alice
    ) as response:
        body = (await response.aread()).decode()
    reply_id = json.loads(body.strip().split("data: ")[-1])["response_id"]
    cid = conversation["id"]
    routes: list[tuple[str, str, Any]] = [
        ("GET", f"/api/run/{run_id}", None),
        ("PATCH", f"/api/run/{run_id}/bot/0", {"temperature": 1}),
        ("POST", f"/api/run/{run_id}/stop", None),
        ("GET", f"/api/stream/{run_id}", None),
        ("GET", f"/api/export/{run_id}.json", None),
        ("GET", f"/api/conversations/{cid}", None),
        ("PATCH", f"/api/conversations/{cid}", {"title": "x"}),
        ("DELETE", f"/api/conversations/{cid}", None),
        ("POST", f"/api/conversations/{cid}/messages", {"message": "hi"}),
        ("GET", f"/api/conversations/{cid}/messages", None),
        ("GET", f"/api/conversations/{cid}/stream", None),
        ("POST", "/api/chat/stream", {"message": "hi", "conversation_id": cid}),
        ("POST", "/api/chat/stream", {"message": "hi", "previous_response_id": reply_id}),
    ]
    for method, path, body in routes:
        response = await http.request(method, path, headers=bob, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await http.get("/api/runs", headers=bob)).json()["items"] == []
    assert (await http.get("/api/conversations", headers=bob)).json()["items"] == []
    assert [r["id"] for r in (await http.get("/api/runs", headers=alice)).json()["items"]] == [
        run_id
    ]
    still = await http.get(f"/api/conversations/{cid}/messages", headers=alice)
    assert len(still.json()["items"]) == 2  # bob's DELETE touched nothing


async def test_open_mode_on_loopback_and_refusal_elsewhere(database_url: str) -> None:
    open_settings = make_settings(dev_mode=False, database_url=database_url)
    check_exposure(open_settings, has_api_keys=False)  # loopback: a warning only
    app = create_app(open_settings, ProviderRegistry([ScriptedProvider()]))
    await container_of(app).start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://symposia.test"
        ) as client:
            assert (await client.get("/api/runs")).status_code == 200
            await container_of(app).api_keys.create("first")
            container_of(app).auth._open_checked = (0.0, True)  # skip the 5 s recheck wait
            assert (await client.get("/api/runs")).status_code == 401  # a key closes the door
    finally:
        await container_of(app).shutdown()
    exposed = make_settings(dev_mode=False, host="0.0.0.0", database_url=database_url)
    with pytest.raises(StartupRefusedError, match="BASIC_AUTH_USER"):
        check_exposure(exposed, has_api_keys=False)
    check_exposure(exposed, has_api_keys=True)


def test_serve_refuses_a_public_host_without_credentials(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOST": "0.0.0.0",
        "DEV_MODE": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    for name in ("BASIC_AUTH_USER", "BASIC_AUTH_PW_HASH"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "symposia", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to listen on HOST=0.0.0.0" in result.stderr


def test_cli_hash_password_and_keys(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "symposia", *args],
            env=env,
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    hashed = cli("hash-password", stdin="s3cret\n").stdout.strip()
    assert hashed.startswith("$2b$")
    import bcrypt

    assert bcrypt.checkpw(b"s3cret", hashed.encode())
    created = cli("keys", "create", "--name", "ci bot")
    assert created.returncode == 0
    key = created.stdout.strip().splitlines()[-1]
    parsed = parse_key(key)
    assert parsed is not None, key
    key_id, secret = parsed
    listed = cli("keys", "list").stdout
    assert key_id in listed
    assert "ci bot" in listed
    assert secret not in listed
    assert cli("keys", "revoke", key_id).returncode == 0
    assert "revoked" in cli("keys", "list").stdout
    assert cli("keys", "revoke", key_id).returncode == 1


async def _create_runs(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    count: int,
    extra: dict[str, str] | None = None,
) -> list[httpx.Response]:
    bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
    return [
        await http.post(
            "/api/run",
            headers={**headers, **(extra or {})},
            json={"topic": "t", "bots": bots, "max_turns": 1},
        )
        for _ in range(count)
    ]


def _assert_429(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert int(response.headers["x-ratelimit-reset"]) > 0


async def test_the_eleventh_run_in_a_minute_is_429(
    http: httpx.AsyncClient, secure: Container
) -> None:
    alice, bob = await _key(secure), await _key(secure)
    responses = await _create_runs(http, alice, 11)
    assert [r.status_code for r in responses[:10]] == [201] * 10
    _assert_429(responses[10], 10)
    assert (await _create_runs(http, bob, 1))[0].status_code == 201  # per principal
    metrics = (await http.get("/metrics")).text
    assert 'symposia_rate_limit_rejections_total{scope="runs"} 1.0' in metrics


@pytest.fixture
async def redis_up() -> None:
    await require_redis()


@pytest.mark.usefixtures("redis_up")
@pytest.mark.parametrize("secure_overrides", [{"redis_url": REDIS_URL}])
async def test_rate_limits_on_the_real_redis(http: httpx.AsyncClient, secure: Container) -> None:
    alice = await _key(secure)
    responses = await _create_runs(http, alice, 11)
    assert [r.status_code for r in responses[:10]] == [201] * 10
    _assert_429(responses[10], 10)
    client = aioredis.from_url(REDIS_URL)
    try:  # the counts really live in Redis
        keys = [k async for k in client.scan_iter(match="*runs*")]
        assert keys
    finally:
        await client.aclose()
    health = (await http.get("/health")).json()
    assert health["redis"] == "ok"


@pytest.mark.parametrize(
    "secure_overrides", [{"redis_url": "redis://127.0.0.1:1/0", "event_log": "memory"}]
)
async def test_redis_down_fails_open(
    http: httpx.AsyncClient, secure: Container, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await _key(secure)
    responses = await _create_runs(http, alice, 12)
    assert [r.status_code for r in responses] == [201] * 12
    warnings = [r for r in caplog.records if "rate-limit storage unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request
    # Two storage calls per run, both failing open: the check, and the count once admitted.
    assert "symposia_rate_limit_redis_fallbacks_total 24.0" in (await http.get("/metrics")).text
    health = await http.get("/health")
    assert health.json()["redis"] == "degraded"


async def _open_app(database_url: str, **overrides: Any) -> FastAPI:
    settings = make_settings(
        dev_mode=False, database_url=database_url, rate_limit_chat="2/minute", **overrides
    )
    app = create_app(settings, ProviderRegistry([ScriptedProvider(token_delay=0)]))
    await container_of(app).start()
    return app


@pytest.mark.parametrize(("trusted", "expected"), [([], 429), (["127.0.0.1"], 201)])
async def test_forwarded_for_counts_only_from_trusted_proxies(
    database_url: str, trusted: list[str], expected: int
) -> None:
    app = await _open_app(database_url, trusted_proxies=trusted)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://symposia.test"
        ) as client:
            cid = (await client.post("/api/conversations", json={})).json()["id"]
            codes = []
            for hop in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
                response = await client.post(
                    f"/api/conversations/{cid}/messages",
                    json={"message": "hi"},
                    headers={"X-Forwarded-For": hop},
                )
                codes.append(response.status_code)
            assert codes == [201, 201, expected]
    finally:
        await container_of(app).shutdown()


async def test_the_served_app_ignores_forwarded_for_from_untrusted_peers(
    tmp_path: Path,
) -> None:
    """Through `symposia serve` itself: uvicorn, left to its defaults, would take
    X-Forwarded-For from any loopback peer before TRUSTED_PROXIES is ever asked."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "RATE_LIMIT_CHAT": "2/minute"}
    for name in ("DEV_MODE", "TRUSTED_PROXIES", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    process = serve_process(env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            body = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
            codes = []
            for hop in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
                response = await client.post(
                    "/v1/chat/completions", json=body, headers={"X-Forwarded-For": hop}
                )
                codes.append(response.status_code)
        assert codes == [200, 200, 429]
    finally:
        process.kill()
        process.wait(timeout=10)


def test_client_address_walks_trusted_hops() -> None:
    proxies = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    assert client_address("127.0.0.1", "203.0.113.9, 10.1.2.3", proxies) == "203.0.113.9"
    assert client_address("198.51.100.7", "203.0.113.9", proxies) == "198.51.100.7"
    assert client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    assert client_address("10.0.0.1", "garbage", proxies) == "garbage"


async def test_bodies_over_the_limit_are_413(http: httpx.AsyncClient) -> None:
    big = b'{"topic": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    auth = basic("alice", PASSWORD)
    declared = await http.post(
        "/api/run", content=big, headers={**auth, "content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert "x-request-id" in declared.headers

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = await http.post(
        "/api/run", content=chunks(), headers={**auth, "content-type": "application/json"}
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize("secure_overrides", [{"max_concurrent_runs_per_principal": 2}])
async def test_too_many_running_runs_is_429(
    http: httpx.AsyncClient, secure: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    alice = await _key(secure)
    bots = [{"name": "A", "model": "scripted/stall"}, {"name": "B", "model": "scripted/stall"}]
    codes = [
        (await http.post("/api/run", headers=alice, json={"topic": "t", "bots": bots}))
        for _ in range(3)
    ]
    assert [c.status_code for c in codes] == [201, 201, 429]
    assert "MAX_CONCURRENT_RUNS_PER_PRINCIPAL" in codes[2].json()["message"]


async def test_fields_that_would_redirect_provider_traffic_are_refused(
    http: httpx.AsyncClient, secure: Container
) -> None:
    """Unknown fields are a 422 naming them, never dropped in silence (issue 22)."""
    alice = await _key(secure)
    sneaky = {"base_url": "http://evil.test", "headers": {"X-Evil": "1"}, "api_key": "stolen"}
    for name, value in sneaky.items():
        bots = [{"name": "A", "model": "scripted/echo", name: value}, {"name": "B"}]
        response = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": bots})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == f"bots.0.{name}"
    top = {"topic": "t", "max_turns": 1, "base_url": "http://evil.test"}
    response = await http.post("/api/run", headers=alice, json=top)
    assert response.status_code == 422
    assert response.json()["field"] == "base_url"
    assert (await http.get("/api/runs", headers=alice)).json()["items"] == []


@pytest.mark.parametrize("secure_overrides", [{"cors_origins": ["https://app.example.test"]}])
async def test_cors_allows_only_configured_origins(http: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = await http.options(
        "/api/run", headers={**preflight, "Origin": "https://app.example.test"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.test"
    denied = await http.options("/api/run", headers={**preflight, "Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in denied.headers


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", json_lines=True, stream=stream)
    yield stream
    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.WARNING)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_request_ids_logs_and_no_secrets(
    http: httpx.AsyncClient, secure: Container, log_lines: io.StringIO
) -> None:
    _, key = await secure.api_keys.create("planted")
    planted_prompt = "PLANTED-PROMPT-" + "z" * 80
    response = await http.post(
        "/api/run",
        headers={"X-API-Key": key, "X-Request-Id": "req-42"},
        json={
            "topic": planted_prompt,
            "max_turns": 2,
            "bots": [
                {"name": "A", "model": "scripted/echo"},
                {"name": "B", "model": "scripted/echo"},
            ],
        },
    )
    assert response.headers["x-request-id"] == "req-42"
    await wait_done(secure, response.json()["id"])
    bad = await http.get("/api/runs", headers={"X-Request-Id": "x" * 65})
    assert bad.status_code == 401
    assert len(bad.headers["x-request-id"]) == 32  # a fresh id replaced the oversized one
    weird = await http.get("/health", headers={"X-Request-Id": "bad id\\n"})
    assert weird.headers["x-request-id"] != "bad id\\n"

    records = _records(log_lines)
    requests = [r for r in records if r["event"] == "request"]
    first = requests[0]
    assert {k: first[k] for k in ("method", "path", "status", "request_id")} == {
        "method": "POST",
        "path": "/api/run",
        "status": 201,
        "request_id": "req-42",
    }
    assert first["duration_ms"] >= 0
    assert len([r for r in requests if r["request_id"] == "req-42"]) == 1  # logged once
    calls = [r for r in records if r["event"] == "provider call"]
    assert calls
    assert all(r["request_id"] == "req-42" for r in calls)  # the run's lines carry it too
    text = log_lines.getvalue()
    assert key not in text
    assert secret_of(key) not in text
    assert "PLANTED-PROMPT-" not in text  # no prompt, not even its start (issue 22)


async def test_metrics_move_after_a_streamed_run(
    http: httpx.AsyncClient, secure: Container
) -> None:
    alice = await _key(secure)
    before = (await http.get("/metrics")).text
    assert "symposia_tokens_streamed_total{" not in before
    response = await http.post(
        "/api/run",
        headers=alice,
        json={
            "topic": "one two three",
            "max_turns": 2,
            "bots": [
                {"name": "A", "model": "scripted/echo"},
                {"name": "B", "model": "scripted/echo"},
            ],
        },
    )
    async with http.stream("GET", f"/api/stream/{response.json()['id']}", headers=alice) as stream:
        await stream.aread()
    after = (await http.get("/metrics")).text
    assert 'symposia_tokens_streamed_total{model="echo",provider="scripted"}' in after
    assert 'symposia_provider_call_seconds_count{provider="scripted"} 2.0' in after
    assert 'symposia_http_requests_total{method="POST",route="/api/run",status="201"} 1.0' in after
    assert 'route="/api/stream/{run_id}"' in after
    assert "symposia_sse_streams_active 0.0" in after
    assert "symposia_runs_active 0.0" in after


async def test_health_reports_database_and_providers_without_calling_them(
    http: httpx.AsyncClient,
) -> None:
    body = (await http.get("/health")).json()
    assert body["database"] == "ok"
    assert body["redis"] is None
    assert body["providers"] == {"scripted": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/api/v1/models"),
    ],
)
async def test_openai_routes_need_credentials(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
    response = await http.request(method, path, json=body if method == "POST" else None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"  # as OpenAI says it
    wrong = await http.request(
        method,
        path,
        json=body if method == "POST" else None,
        headers={"Authorization": "Bearer sym_000000000000_" + "A" * 43},
    )
    assert wrong.status_code == 401

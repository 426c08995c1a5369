"""The settings the seed systems documented are honoured or refused at start, never ignored:
API_KEY/API_KEYS, LLM_PROVIDER, MODEL_NAME, BEDROCK_MODEL_ID, API_HOST/API_PORT,
ENVIRONMENT, DEBUG, VERSION, LOG_FILE; Redis down with REDIS_URL set; unknown variables
that look like ours."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import default_providers
from symposia.env_check import startup_warnings, unknown_variable_warnings
from symposia.observability.logging import configure_logging, configure_serve_logging
from symposia.security.auth import check_exposure
from symposia.settings import SettingsError, load_settings
from tests.conftest import make_settings
from tests.fakes.live import free_port, serve_process, wait_until_healthy
from tests.fakes.provider_server import FakeProviderServer

KEY = "seed-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        dev_mode=False,
        database_url=f"sqlite:///{tmp_path / 'k.db'}",
        api_key=KEY,
        api_keys=[OTHER_KEY],
        version="1.0.0",
        environment="production",
    )
    app: FastAPI = create_app(settings)
    container = container_of(app)
    await container.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c
    await container.shutdown()


async def test_api_key_from_the_environment_is_required_and_accepted(
    keyed: httpx.AsyncClient,
) -> None:
    assert (await keyed.get("/api/runs")).status_code == 401  # not open any more
    assert (await keyed.get("/api/runs", headers={"X-API-Key": KEY})).status_code == 200
    bearer = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert (await keyed.get("/api/runs", headers=bearer)).status_code == 200
    wrong = {"X-API-Key": KEY + "x"}
    assert (await keyed.get("/api/runs", headers=wrong)).status_code == 401
    # The OpenAI SDK's "anything" bearer no longer passes as the open server's caller.
    anything = {"Authorization": "Bearer anything"}
    assert (await keyed.get("/v1/models", headers=anything)).status_code == 401


async def test_version_and_environment_are_shown(keyed: httpx.AsyncClient) -> None:
    body = (await keyed.get("/health")).json()
    assert body["version"] == "1.0.0"
    assert body["environment"] == "production"
    assert body["server_version"]
    index = await keyed.get("/", headers={"Accept": "application/json"})
    assert index.json()["version"] == "1.0.0"


def test_static_keys_count_as_credentials_for_a_public_address() -> None:
    settings = make_settings(dev_mode=False, host="0.0.0.0", api_key=KEY)
    check_exposure(settings, has_api_keys=False)  # no StartupRefusedError


@pytest.mark.parametrize(
    ("variable", "value"),
    [("API_KEY", "pw1234"), ("API_KEYS", f"{KEY}, tk9999"), ("API_KEY", f" {KEY}")],
)
def test_weak_static_keys_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=rf"invalid setting {variable}\b") as info:
        load_settings()
    assert "pw1234" not in str(info.value)
    assert "tk9999" not in str(info.value)


def test_empty_api_key_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "")
    assert load_settings().static_api_keys == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLM_PROVIDER": "openai"}, "openai/gpt-4o-mini"),
        ({"LLM_PROVIDER": "OpenAI", "MODEL_NAME": "gpt-4.1"}, "openai/gpt-4.1"),
        (
            {"LLM_PROVIDER": "openrouter", "MODEL_NAME": "openai/gpt-3.5-turbo"},
            "openrouter/openai/gpt-3.5-turbo",
        ),
        # The OpenRouter seed's .env: a key and MODEL_NAME, no provider named.
        (
            {"OPENROUTER_API_KEY": "sk-or-x", "MODEL_NAME": "openai/gpt-3.5-turbo"},
            "openrouter/openai/gpt-3.5-turbo",
        ),
        # The supervisor seed's .env.
        ({"BEDROCK_MODEL_ID": "amazon.nova-lite-v1:0"}, "bedrock/amazon.nova-lite-v1:0"),
        ({"LLM_PROVIDER": "local"}, "local/smollm2"),
        (
            {"DEFAULT_MODEL": "openai/gpt-4.1", "LLM_PROVIDER": "openai", "MODEL_NAME": "gpt-4.1"},
            "openai/gpt-4.1",
        ),
        # A bare DEFAULT_MODEL is LLM_PROVIDER's model, as MODEL_NAME is: pinned to it.
        ({"DEFAULT_MODEL": "gpt-3.5-turbo", "LLM_PROVIDER": "openai"}, "openai/gpt-3.5-turbo"),
        ({"DEFAULT_MODEL": "smollm2", "LLM_PROVIDER": "local"}, "local/smollm2"),
        (
            {"DEFAULT_MODEL": "meta-llama/llama-3-8b-instruct", "LLM_PROVIDER": "openrouter"},
            "openrouter/meta-llama/llama-3-8b-instruct",
        ),
        (
            {"DEFAULT_MODEL": "gpt-4o", "MODEL_NAME": "gpt-4o", "OPENAI_API_KEY": "sk-x"},
            "openai/gpt-4o",
        ),
        # The gateway seed's .env: no provider named, the name resolved per use.
        ({"DEFAULT_MODEL": "gpt-3.5-turbo", "OPENAI_API_KEY": "sk-x"}, "gpt-3.5-turbo"),
    ],
)
def test_default_model_from_seed_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().default_model == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_PROVIDER": "watsonx"}, "LLM_PROVIDER=watsonx is not a provider"),
        ({"DEFAULT_MODEL": "openai/gpt-4.1", "LLM_PROVIDER": "anthropic"}, "disagrees"),
        ({"DEFAULT_MODEL": "openai/gpt-4.1", "MODEL_NAME": "gpt-4o"}, "disagrees"),
        ({"LLM_PROVIDER": "openai", "BEDROCK_MODEL_ID": "amazon.nova-lite-v1:0"}, "Bedrock"),
        ({"MODEL_NAME": "gpt-4o"}, "MODEL_NAME needs LLM_PROVIDER"),
        # A bare name whose form is another provider's, or another model than MODEL_NAME.
        ({"DEFAULT_MODEL": "claude-haiku-4-5", "LLM_PROVIDER": "openai"}, "disagrees"),
        ({"DEFAULT_MODEL": "gpt-4o", "LLM_PROVIDER": "openrouter"}, "disagrees"),
        (
            {"DEFAULT_MODEL": "gpt-4o", "LLM_PROVIDER": "openai", "MODEL_NAME": "gpt-4.1"},
            "disagrees",
        ),
    ],
)
def test_disagreeing_seed_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_api_host_and_port_yield_to_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", "9001")
    settings = load_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)
    monkeypatch.setenv("HOST", "127.0.0.2")
    monkeypatch.setenv("PORT", "9002")
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.2", 9002)
    warnings = startup_warnings(env_file=None)
    assert "API_HOST is ignored: HOST is set too, and wins" in warnings
    assert "API_PORT is ignored: PORT is set too, and wins" in warnings


def test_debug_means_debug_logs_unless_log_level_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "true")
    assert load_settings().log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert load_settings().log_level == "WARNING"
    monkeypatch.setenv("DEBUG", "sometimes")
    with pytest.raises(SettingsError, match="invalid setting DEBUG"):
        load_settings()


def test_app_env_is_read_as_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "staging")
    assert load_settings().environment == "staging"


def test_log_file_gets_json_lines_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    settings = make_settings(log_file=str(path), log_file_max_bytes=65_536, log_file_backups=2)
    try:
        configure_serve_logging(settings)
        log = logging.getLogger("symposia.test")
        log.warning("first line")
        for _ in range(800):
            log.warning("filler %s", "x" * 100)
        first = json.loads(Path(f"{path}.2").read_text().splitlines()[0])
        assert first["event"] == "first line"
        assert first["level"] == "warning"
        assert path.stat().st_size <= 65_536
        assert not Path(f"{path}.3").exists()
    finally:
        configure_logging()  # closes the file


def test_unwritable_log_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "missing" / "app.log"))
    with pytest.raises(SettingsError, match="invalid setting LOG_FILE: cannot be written"):
        load_settings()


def test_unknown_variables_that_look_like_ours_are_named() -> None:
    warnings = unknown_variable_warnings(
        ["SYMPOSIA_DEFAULT_MODEL", "DATABASE_URI", "RATE_LIMT_CHAT", "SYMPOSIA_WHATEVER"]
    )
    assert warnings == [
        "DATABASE_URI is not a setting and is ignored; did you mean DATABASE_URL?",
        "RATE_LIMT_CHAT is not a setting and is ignored; did you mean RATE_LIMIT_CHAT?",
        "SYMPOSIA_DEFAULT_MODEL is not a setting and is ignored: settings have no SYMPOSIA_ "
        "prefix; did you mean DEFAULT_MODEL?",
        "SYMPOSIA_WHATEVER is not a setting and is ignored: settings have no SYMPOSIA_ prefix",
    ]


def test_common_variables_are_not_taken_for_ours() -> None:
    common = [
        *os.environ,
        "HOSTNAME",
        "PATH",
        "HOME",
        "LANG",
        "TERM",
        "REDIS_PORT",
        "POSTGRES_PASSWORD",
        "SYMPOSIA_API_KEY",  # the CLI client's
        "SYMPOSIA_TEST_PG_HOST",  # the test suite's
        "API_HOST",
        "DEBUG",
    ]
    assert unknown_variable_warnings(common) == []


def test_env_file_variables_are_checked_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVLE=DEBUG\n")
    assert startup_warnings({}, env_file) == [
        "LOG_LEVLE is not a setting and is ignored; did you mean LOG_LEVEL?"
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_with_redis_down_starts_failing_open(tmp_path: Path) -> None:
    """The chat API seed's REDIS_URL, Redis down: start, say so, rate limits fail open,
    API_KEY required; a misspelt variable is named."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
        "REDIS_CONNECT_TIMEOUT_SECONDS": "0.5",
        "API_KEY": KEY,
        "DEFAULT_MODEL": "scripted/echo",
        "SYMPOSIA_LOG_LEVEL": "DEBUG",
    }
    process = serve_process(env, tmp_path, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base, process)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            health = (await client.get("/health")).json()
            assert health["redis"] == "degraded"
            assert (await client.get("/api/runs")).status_code == 401
            listed = await client.get("/api/runs", headers={"X-API-Key": KEY})
            assert listed.status_code == 200
            body = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
            answer = await client.post(
                "/v1/chat/completions", json=body, headers={"X-API-Key": KEY}
            )
            assert answer.status_code == 200, answer.text
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    text = stderr.decode()
    assert "starting without it" in text
    assert "SYMPOSIA_LOG_LEVEL is not a setting" in text
    assert "did you mean LOG_LEVEL" in text
    assert KEY not in text


def test_serve_refuses_an_explicit_redis_event_log_that_is_down(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
        "EVENT_LOG": "redis",
        "REDIS_CONNECT_TIMEOUT_SECONDS": "0.5",
    }
    process = serve_process(env, tmp_path, stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "event log" in stderr.decode()


async def test_a_static_key_signs_a_browser_in(keyed: httpx.AsyncClient) -> None:
    from tests.test_sessions import sign_in

    response = await sign_in(keyed, method="api_key", api_key=KEY)
    assert response.status_code == 303, response.text
    assert (await keyed.get("/api/runs")).status_code == 200  # by the session cookie
    refused = await sign_in(keyed, method="api_key", api_key=KEY[:-1] + "!")
    assert refused.status_code == 401


async def test_a_shared_or_explicit_redis_event_log_still_refuses(tmp_path: Path) -> None:
    from symposia.cli.startup import _check_event_log
    from symposia.events.redis import EventLogUnreachableError

    down = {
        "redis_url": f"redis://127.0.0.1:{_closed_port()}/0",
        "redis_connect_timeout_seconds": 0.5,
    }
    single, notes = await _check_event_log(make_settings(**down), workers=1)
    assert single.event_log == "memory"
    assert not single.event_log_on_redis
    assert "starting without it" in notes[0]
    with pytest.raises(EventLogUnreachableError):
        await _check_event_log(make_settings(**down), workers=2)
    with pytest.raises(EventLogUnreachableError):
        await _check_event_log(make_settings(**down, event_log="redis"), workers=1)


def test_several_workers_leave_log_file_rotation_to_logrotate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from symposia.cli.startup import _startup_notes

    settings = make_settings(log_file=str(tmp_path / "app.log"))
    monkeypatch.setattr(os, "environ", {})
    assert _startup_notes(settings, 1) == []
    assert "rotate it with logrotate" in _startup_notes(settings, 2)[0]


def test_a_models_file_name_as_default_model_must_route_to_llm_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A public name keeps its route (its defaults, price, fallbacks): it is not pinned."""
    models = tmp_path / "models.yaml"
    models.write_text("gpt-3.5-turbo: openai/gpt-4o-mini\n")
    monkeypatch.setenv("MODELS_FILE", str(models))
    monkeypatch.setenv("DEFAULT_MODEL", "gpt-3.5-turbo")
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    assert load_settings().default_model == "gpt-3.5-turbo"
    monkeypatch.setenv("LLM_PROVIDER", "anthropic")
    with pytest.raises(SettingsError, match="disagrees"):
        load_settings()


@pytest.mark.parametrize(
    "env",
    [
        {"DEFAULT_MODEL": "gpt-3.5-turbo"},  # the gateway seed's .env
        {"DEFAULT_MODEL": "gpt-3.5-turbo", "LLM_PROVIDER": "openai"},
    ],
)
async def test_a_bare_default_model_starts_and_reaches_openai(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_provider: FakeProviderServer,
    env: dict[str, str],
) -> None:
    """The server starts with it, and a request naming no model is answered by OpenAI's
    gpt-3.5-turbo."""
    fake_provider.openai_models = ["gpt-3.5-turbo", "gpt-4o-mini"]
    env |= {
        "OPENAI_API_KEY": "sk-seed-gateway",
        "OPENAI_BASE_URL": fake_provider.openai_base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
        "DEV_MODE": "true",
        "CHAT_TITLES": "false",  # one model call per message, to count them
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(allowed_hosts=["symposia.test"])
    app = create_app(settings, default_providers(settings))
    container = container_of(app)
    await container.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            assert (await c.get("/health")).status_code == 200
            answer = await c.post("/api/chat/stream", json={"message": "Hello"})
            assert answer.status_code == 200, answer.text
            assert "Hello, world!" in "".join(
                json.loads(line[6:]).get("delta", "")
                for line in answer.text.splitlines()
                if line.startswith("data: ")
            )
    finally:
        await container.shutdown()
    assert [r.body["model"] for r in fake_provider.requests_to("openai")] == ["gpt-3.5-turbo"]

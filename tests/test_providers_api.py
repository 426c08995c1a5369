"""Providers through the HTTP API: discovery, validation, a mixed OpenAI/Anthropic run
against the fake provider server, faults as the user sees them, usage, and logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.providers.scripted import ScriptedProvider
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.helpers import wait_done

OPENAI = "openai/gpt-4o-mini"
ANTHROPIC = "anthropic/claude-haiku-4-5"


@pytest.fixture
async def remote_app(fake_provider: FakeProviderServer) -> AsyncIterator[FastAPI]:
    settings = remote_settings(fake_provider)
    providers = default_providers(settings)
    providers.register(ScriptedProvider(token_delay=0))
    application = create_app(settings, providers)
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


@pytest.fixture
def remote(remote_app: FastAPI) -> Container:
    return container_of(remote_app)


@pytest.fixture
async def api(remote_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=remote_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c


def _bots(first: str = OPENAI, second: str = ANTHROPIC, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": "Ada", "model": first, "system_prompt": "You are Ada.", **extra},
        {"name": "Bert", "model": second, "system_prompt": "You are Bert."},
    ]


async def _run(
    api: httpx.AsyncClient, remote: Container, bots: list[dict[str, Any]], max_turns: int = 2
) -> tuple[str, list[Any]]:
    response = await api.post(
        "/api/run", json={"topic": "Tabs or spaces?", "bots": bots, "max_turns": max_turns}
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    return run_id, await wait_done(remote, run_id)


async def test_an_openai_bot_and_an_anthropic_bot_debate(
    api: httpx.AsyncClient, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Tabs", " win."], prompt_tokens=9))
    fake_provider.enqueue("anthropic", Reply(tokens=["Spaces", " win."], prompt_tokens=14))
    run_id, events = await _run(api, remote, _bots())
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    export = (await api.get(f"/api/export/{run_id}.json")).json()
    assert [(m["author"], m["model"], m["content"]) for m in export["messages"]] == [
        ("Ada", OPENAI, "Tabs win."),
        ("Bert", ANTHROPIC, "Spaces win."),
    ]
    first, second = (m["usage"] for m in export["messages"])
    assert (first["prompt_tokens"], first["completion_tokens"], first["estimated"]) == (9, 2, False)
    assert (second["prompt_tokens"], second["completion_tokens"]) == (14, 2)
    assert second["time_to_first_token_ms"] is not None
    assert second["total_ms"] >= second["time_to_first_token_ms"]
    # Bert (Anthropic) saw Ada's turn as a named user message after the topic, merged.
    (sent,) = fake_provider.requests_to("anthropic")
    assert sent.body["system"] == "You are Bert."
    assert sent.body["messages"] == [
        {"role": "user", "content": "Tabs or spaces?\n\nAda: Tabs win."}
    ]


async def test_usage_is_estimated_when_the_provider_reports_none(
    api: httpx.AsyncClient, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["a" * 40], include_usage=False))
    run_id, _ = await _run(api, remote, _bots(OPENAI, "scripted/echo"), max_turns=1)
    usage = (await api.get(f"/api/export/{run_id}.json")).json()["messages"][0]["usage"]
    assert usage["estimated"] is True
    assert usage["completion_tokens"] == 10  # 40 characters at about 4 per token


async def test_retried_faults_are_invisible_to_the_user(
    api: httpx.AsyncClient, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue(
        "openai",
        Reply(status=429, headers={"Retry-After": "0"}),
        Reply(reset=True),
        Reply(tokens=["ok"]),
    )
    fake_provider.enqueue("anthropic", Reply(status=529), Reply(tokens=["fine"]))
    _run_id, events = await _run(api, remote, _bots())
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    assert not [e for e in events if e.type == "error"]
    assert len(fake_provider.requests_to("openai")) == 3


async def test_a_cut_stream_ends_the_run_with_the_partial_text_and_one_error_shape(
    api: httpx.AsyncClient, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Tabs", " win."]))
    fake_provider.enqueue("anthropic", Reply(tokens=["Spaces", " are", " best"], cut_after=2))
    run_id, events = await _run(api, remote, _bots(), max_turns=4)
    error = next(e for e in events if e.type == "error").data
    assert set(error) == {
        "code",
        "message",
        "provider",
        "model",
        "status",
        "retryable",
        "suggestion",
        "retry_after",
    }
    assert error["provider"] == "anthropic"
    assert error["model"] == "claude-haiku-4-5"
    summary = (await api.get(f"/api/run/{run_id}")).json()
    assert summary["status"] == "error"
    assert summary["error"]["code"] == error["code"]
    export = (await api.get(f"/api/export/{run_id}.json")).json()
    assert [(m["content"], m["status"]) for m in export["messages"]] == [
        ("Tabs win.", "complete"),
        ("Spaces are", "partial"),
    ]
    assert len(fake_provider.requests_to("anthropic")) == 1  # never silently retried


async def test_an_invalid_key_tells_which_variable_to_set(
    api: httpx.AsyncClient, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(status=401))
    _run_id, events = await _run(api, remote, _bots())
    error = next(e for e in events if e.type == "error").data
    assert error["code"] == "invalid_api_key"
    assert "OPENAI_API_KEY" in error["suggestion"]
    assert error["retryable"] is False


async def test_a_fallback_answers_when_the_model_fails_first(
    api: httpx.AsyncClient, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(status=500), Reply(status=500), Reply(status=500))
    fake_provider.enqueue("anthropic", Reply(tokens=["Fallback", " here."]), Reply())
    bots = _bots(OPENAI, "scripted/echo", fallbacks=[ANTHROPIC])
    run_id, events = await _run(api, remote, bots, max_turns=1)
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    message = (await api.get(f"/api/export/{run_id}.json")).json()["messages"][0]
    assert (message["model"], message["content"]) == (ANTHROPIC, "Fallback here.")


async def test_models_are_discovered_cached_and_failures_reported(
    api: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    body = (await api.get("/api/models")).json()
    ids = {m["id"] for m in body["models"]}
    assert {
        "openai/gpt-4o-mini",
        "openai/gpt-4o",
        "anthropic/claude-haiku-4-5",
        "openrouter/gpt-4o-mini",
        "scripted/echo",
    } <= ids
    assert body["providers"]["openai"] == {
        "configured": True,
        "ok": True,
        "error": None,
        "count": 2,
    }
    assert body["providers"]["bedrock"]["configured"] is False
    listings = len([r for r in fake_provider.requests if r.path.endswith("/models")])
    await api.get("/api/models")
    assert len([r for r in fake_provider.requests if r.path.endswith("/models")]) == listings


async def test_a_provider_that_fails_to_list_is_reported_not_fatal(
    api: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.models_status = 500
    response = await api.get("/api/models")
    assert response.status_code == 200
    body = response.json()
    assert body["providers"]["openai"]["ok"] is False
    assert body["providers"]["openai"]["error"]["code"] == "provider_unavailable"
    assert "scripted/echo" in {m["id"] for m in body["models"]}
    fake_provider.models_status = 200  # failures are not cached: the next call lists again
    body = (await api.get("/api/models")).json()
    assert body["providers"]["openai"]["ok"] is True


async def test_model_cache_expires(remote: Container, fake_provider: FakeProviderServer) -> None:
    now = [0.0]
    remote.models.clock = lambda: now[0]
    remote.models.ttl = 3600
    await remote.models.listing()
    count = len(fake_provider.requests)
    now[0] = 3599
    await remote.models.listing()
    assert len(fake_provider.requests) == count
    now[0] = 3601
    await remote.models.listing()
    assert len(fake_provider.requests) > count


async def test_an_unknown_model_of_a_known_provider_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/run", json={"topic": "t", "bots": _bots("openai/gpt-9-imaginary")}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "bots.0.model"
    assert "/api/models" in response.json()["message"]


async def test_a_provider_without_a_key_is_422_naming_the_variable(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/run", json={"topic": "t", "bots": _bots()})
    assert response.status_code == 422
    assert response.json()["field"] == "bots.0.model"
    assert "OPENAI_API_KEY" in response.json()["message"]


async def test_keys_and_prompts_never_reach_the_logs(
    api: httpx.AsyncClient,
    remote: Container,
    fake_provider: FakeProviderServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    topic = "Q" * 50 + "SECRET-TAIL-OF-THE-PROMPT"
    fake_provider.enqueue("openai", Reply(status=503), Reply())
    response = await api.post("/api/run", json={"topic": topic, "bots": _bots(), "max_turns": 2})
    await wait_done(remote, response.json()["id"])
    everything = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    calls = [r for r in caplog.records if r.getMessage() == "provider call"]
    assert [(r.provider, r.attempt, r.status) for r in calls][:2] == [  # type: ignore[attr-defined]
        ("openai", 1, "provider_unavailable"),
        ("openai", 2, "ok"),
    ]
    assert all(hasattr(r, "ttft_ms") and hasattr(r, "total_ms") for r in calls)
    assert not any(hasattr(r, "prompt_preview") for r in calls)  # prompts never logged
    assert "Q" * 10 not in everything
    for secret in ("sk-test-openai", "sk-ant-test", "sk-or-test", "SECRET-TAIL-OF-THE-PROMPT"):
        assert secret not in everything

"""OpenAI, OpenRouter, compatible servers and Anthropic through their real SDKs, against
the fake provider server on loopback, faults included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from symposia.container import remote_providers
from symposia.errors import ProviderError
from symposia.providers.base import ChatMessage, CompletionRequest, StreamEnd, TextDelta
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer, Reply

OPENAI = "openai/gpt-4o-mini"
ANTHROPIC = "anthropic/claude-haiku-4-5"
ROUTES = {"openai": OPENAI, "anthropic": ANTHROPIC}
MESSAGES = [
    ChatMessage("system", "You are Ada."),
    ChatMessage("user", "Tabs or spaces?"),
    ChatMessage("user", "Bert: Spaces, obviously."),
    ChatMessage("assistant", "Tabs."),
]


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def registry(fake_provider: FakeProviderServer) -> ProviderRegistry:
    settings = remote_settings(
        fake_provider,
        openai_compatible={"ollama": {"base_url": fake_provider.openai_base_url}},
    )
    return ProviderRegistry(remote_providers(settings))


@pytest.fixture
async def closing(registry: ProviderRegistry) -> AsyncIterator[None]:
    yield
    for provider in registry:
        close = getattr(provider, "close", None)
        if close is not None:
            await close()


def _call(
    registry: ProviderRegistry, *models: str, timeouts: Timeouts | None = None
) -> tuple[ModelCall, Sleeps]:
    sleeps = Sleeps()
    request = CompletionRequest("", MESSAGES, temperature=0.3, max_tokens=40)
    call = ModelCall(
        registry,
        RetryPolicy(3, 1.0, jitter=0),
        timeouts or Timeouts(5, 5),
        list(models),
        request,
        sleep=sleeps,
    )
    return call, sleeps


async def _collect(call: ModelCall) -> tuple[str, StreamEnd | None]:
    text, end = [], None
    async for delta in call:
        if isinstance(delta, TextDelta):
            text.append(delta.text)
        else:
            end = delta
    return "".join(text), end


pytestmark = pytest.mark.usefixtures("closing")


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_streams_text_and_usage(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(tokens=["Hel", "lo", " ☃"], prompt_tokens=21))
    text, end = await _collect(_call(registry, ROUTES[route])[0])
    assert text == "Hello ☃"
    assert end is not None
    assert (end.prompt_tokens, end.completion_tokens) == (21, 3)
    assert end.finish_reason == "stop"


async def test_openai_request_shape(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    await _collect(_call(registry, OPENAI)[0])
    (sent,) = fake_provider.requests_to("openai")
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user", "user", "assistant"]
    assert sent.headers["authorization"] == "Bearer sk-test-openai"


async def test_openai_organization_and_project_go_to_openai_only(
    fake_provider: FakeProviderServer,
) -> None:
    """OPENAI_ORG_ID and OPENAI_PROJECT_ID, which the SDK read from the environment."""
    settings = remote_settings(fake_provider, openai_org_id="org-1", openai_project_id="proj_2")
    registry = ProviderRegistry(remote_providers(settings))
    try:
        await _collect(_call(registry, OPENAI)[0])
        await _collect(_call(registry, "openrouter/meta-llama/llama-3-8b")[0])
    finally:
        for provider in registry:
            close = getattr(provider, "close", None)
            if close is not None:
                await close()
    to_openai, to_openrouter = fake_provider.requests_to("openai")
    assert to_openai.headers["openai-organization"] == "org-1"
    assert to_openai.headers["openai-project"] == "proj_2"
    assert "openai-organization" not in to_openrouter.headers
    assert "openai-project" not in to_openrouter.headers


async def test_anthropic_gets_top_level_system_and_alternating_roles(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    await _collect(_call(registry, ANTHROPIC)[0])
    (sent,) = fake_provider.requests_to("anthropic")
    assert sent.body["system"] == "You are Ada."
    assert sent.body["messages"] == [
        {"role": "user", "content": "Tabs or spaces?\n\nBert: Spaces, obviously."},
        {"role": "assistant", "content": "Tabs."},
    ]
    assert sent.body["max_tokens"] == 40


async def test_anthropic_conversation_opened_by_the_assistant_gets_a_user_turn_first(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    call, _ = _call(registry, ANTHROPIC)
    call.request = CompletionRequest("", [ChatMessage("assistant", "I start.")], max_tokens=5)
    await _collect(call)
    (sent,) = fake_provider.requests_to("anthropic")
    assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant"]


async def test_openrouter_sends_attribution_headers(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    text, _ = await _collect(_call(registry, "openrouter/meta-llama/llama-3-8b")[0])
    assert text == "Hello, world!"
    (sent,) = fake_provider.requests_to("openai")
    assert sent.headers["http-referer"] == "https://chat.example.test"
    assert sent.headers["x-title"] == "Symposia Tests"
    assert sent.headers["authorization"] == "Bearer sk-or-test"
    assert sent.body["model"] == "meta-llama/llama-3-8b"


async def test_a_configured_compatible_server_is_its_own_provider(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    text, _ = await _collect(_call(registry, "ollama/llama3.2")[0])
    assert text == "Hello, world!"
    (sent,) = fake_provider.requests_to("openai")
    assert sent.body["model"] == "llama3.2"
    assert "http-referer" not in sent.headers


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_429_with_retry_after_is_retried_after_that_long(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(
        route, Reply(status=429, headers={"Retry-After": "2"}), Reply(status=503), Reply()
    )
    call, sleeps = _call(registry, ROUTES[route])
    text, _ = await _collect(call)
    assert text == "Hello, world!"
    assert sleeps == [2.0, 2.0]  # Retry-After, then the second backoff step (1 s x 2)
    assert [f.code for f in call.attempts] == ["rate_limited", "provider_unavailable"]
    sent = fake_provider.requests_to(route)
    assert len(sent) == 3
    if route == "anthropic":  # the SDK's own retry loop is off: every attempt is its first
        assert {r.headers.get("x-stainless-retry-count") for r in sent} == {"0"}
    else:  # no SDK at all: each of our attempts is one plain HTTP request
        assert not any(k.startswith("x-stainless") for r in sent for k in r.headers)


async def test_anthropic_529_overloaded_is_retried(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("anthropic", Reply(status=529), Reply())
    call, sleeps = _call(registry, ANTHROPIC)
    assert (await _collect(call))[0] == "Hello, world!"
    assert call.attempts[0].code == "overloaded"
    assert call.attempts[0].retryable
    assert sleeps == [1.0]


@pytest.mark.parametrize(
    ("route", "env"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
async def test_401_is_not_retried_and_names_the_variable(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str, env: str
) -> None:
    fake_provider.enqueue(route, Reply(status=401))
    call, sleeps = _call(registry, ROUTES[route])
    with pytest.raises(ProviderError) as info:
        await _collect(call)
    failure = info.value.failure
    assert failure.code == "invalid_api_key"
    assert env in (failure.suggestion or "")
    assert not failure.retryable
    assert sleeps == []
    assert len(fake_provider.requests_to(route)) == 1


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_unknown_model_404_points_to_the_listing(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(status=404))
    with pytest.raises(ProviderError) as info:
        await _collect(_call(registry, ROUTES[route])[0])
    assert info.value.failure.code == "model_not_found"
    assert "/api/models" in (info.value.failure.suggestion or "")


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_connection_reset_before_the_first_byte_is_retried(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(reset=True), Reply())
    call, _ = _call(registry, ROUTES[route])
    assert (await _collect(call))[0] == "Hello, world!"
    assert call.attempts[0].code == "connection_error"


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_a_200_whose_first_event_is_an_error(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    error = {"type": "overloaded_error", "message": "busy right now"}
    fake_provider.enqueue(route, Reply(error_event=error), Reply())
    call, _ = _call(registry, ROUTES[route])
    assert (await _collect(call))[0] == "Hello, world!"
    assert call.attempts[0].code == "overloaded"
    assert "busy right now" in call.attempts[0].message


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_a_stream_cut_after_tokens_is_an_error_with_the_partial_text_and_no_retry(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(tokens=["one", " two", " three"], cut_after=2), Reply())
    call, _ = _call(registry, ROUTES[route])
    received: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for delta in call:
            if isinstance(delta, TextDelta):
                received.append(delta.text)
    assert "".join(received) == "one two"  # what arrived at once may come as one delta
    assert info.value.failure.code in {"stream_error", "connection_error"}
    assert len(fake_provider.requests_to(route)) == 1


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_a_stall_after_the_first_token_is_freed_by_the_idle_timeout(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(stall_after=1))
    call, _ = _call(registry, ROUTES[route], timeouts=Timeouts(first_token=5, idle=0.2))
    with pytest.raises(ProviderError) as info:
        await _collect(call)
    assert info.value.failure.code == "timeout"
    for _ in range(100):  # the upstream connection was closed, not left hanging
        if fake_provider.disconnects:
            break
        await __import__("asyncio").sleep(0.01)
    assert fake_provider.disconnects


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_multibyte_utf8_split_across_reads(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(tokens=["é", "€", "😀", " ok"], split_utf8=True))
    assert (await _collect(_call(registry, ROUTES[route])[0]))[0] == "é€😀 ok"


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_a_malformed_json_chunk_is_a_stream_error(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(malformed_at=0), Reply())
    call, _ = _call(registry, ROUTES[route])
    assert (await _collect(call))[0] == "Hello, world!"  # nothing was shown yet: retried
    assert call.attempts[0].code == "stream_error"


async def test_fallback_to_another_provider_before_the_first_delta(
    registry: ProviderRegistry, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(status=401))
    fake_provider.enqueue("anthropic", Reply(tokens=["saved"]))
    call, _ = _call(registry, OPENAI, ANTHROPIC)
    assert (await _collect(call))[0] == "saved"
    assert call.model == ANTHROPIC


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_model_listing(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    models = await registry.get(route).models()
    expected: Any = (
        fake_provider.openai_models if route == "openai" else fake_provider.anthropic_models
    )
    assert models == sorted(expected)


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_text_that_arrives_with_an_in_stream_error_is_kept(
    registry: ProviderRegistry, fake_provider: FakeProviderServer, route: str
) -> None:
    """Issue 10, point 6: the OpenAI adapter dropped the text read together with an error."""
    error = {"type": "overloaded_error", "message": "busy"}
    fake_provider.enqueue(
        route, Reply(tokens=["Half", " a", " thought"], error_event=error, error_after=2), Reply()
    )
    call, _ = _call(registry, ROUTES[route])
    received: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for delta in call:
            if isinstance(delta, TextDelta):
                received.append(delta.text)
    assert "".join(received) == "Half a"
    assert info.value.failure.code == "overloaded"
    assert len(fake_provider.requests_to(route)) == 1  # text was shown: never retried

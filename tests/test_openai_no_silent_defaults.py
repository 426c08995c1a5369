"""Issue 13, point 4: a `/v1` request's unset parameters are not sent to the model.

Its own defaults apply; a provider that requires max_tokens (Anthropic) gets the
documented PROVIDER_MAX_TOKENS_DEFAULT, and MAX_TOKENS_LIMIT still caps what a client asks.
"""

from __future__ import annotations

import openai
import pytest

from symposia.container import Container
from symposia.providers.scripted import ScriptedProvider
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.test_openai_compat import HELLO, api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # the fixtures used here


async def test_unset_parameters_are_not_sent_upstream(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(), Reply())
    await client.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    await client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=HELLO,
        temperature=0.2,
        max_tokens=9000 // 3,  # type: ignore[arg-type]
    )
    unset, chosen = (r.body for r in fake_provider.requests_to("openai"))
    assert not {"temperature", "max_tokens", "top_p"} & set(unset)
    assert (chosen["temperature"], chosen["max_tokens"]) == (0.2, 3000)


async def test_anthropic_gets_the_documented_max_tokens_and_no_temperature(
    client: openai.AsyncOpenAI, compat: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("anthropic", Reply())
    await client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=HELLO)  # type: ignore[arg-type]
    (sent,) = fake_provider.requests_to("anthropic")
    assert sent.body["max_tokens"] == compat.settings.provider_max_tokens_default == 4096
    assert "temperature" not in sent.body


async def test_the_model_call_carries_none_for_what_the_client_left_out(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    """No DEFAULT_MAX_TOKENS (256) and no 0.7 temperature in the call."""
    completion = await client.chat.completions.create(model="scripted/count", messages=HELLO)  # type: ignore[arg-type]
    request = scripted.requests[-1]
    assert (request.temperature, request.max_tokens, request.top_p) == (None, None, None)
    assert completion.choices[0].message.content is not None


async def test_max_tokens_limit_still_caps_what_a_client_asks(
    client: openai.AsyncOpenAI, compat: Container
) -> None:
    limit = compat.settings.max_tokens_limit
    with pytest.raises(openai.BadRequestError, match="MAX_TOKENS_LIMIT"):
        await client.chat.completions.create(
            model="scripted/count",
            messages=HELLO,
            max_tokens=limit + 1,  # type: ignore[arg-type]
        )

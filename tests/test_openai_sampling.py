"""Issue 13, point 5: `seed`, `logprobs`/`top_logprobs` and `n` are honoured or refused.

Passed through to OpenAI-compatible upstreams (logprobs relayed back, streamed and not);
a provider that cannot honour one answers a 400 naming it, never a silent drop.
"""

from __future__ import annotations

import openai
import pytest

from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.test_openai_compat import HELLO, api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # the fixtures used here

OPENAI_MODEL = "openai/gpt-4o-mini"


async def test_seed_reaches_an_openai_upstream(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply())
    await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO, seed=42)  # type: ignore[arg-type]
    (sent,) = fake_provider.requests_to("openai")
    assert sent.body["seed"] == 42


@pytest.mark.parametrize(
    ("model", "provider"),
    [("anthropic/claude-haiku-4-5", "anthropic"), ("local/smollm2", "local")],
)
@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"seed": 1}, "seed"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ],
)
async def test_a_provider_that_cannot_honour_it_answers_a_400_naming_both(
    client: openai.AsyncOpenAI,
    fake_provider: FakeProviderServer,
    model: str,
    provider: str,
    parameters: dict[str, object],
    named: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model=model, messages=HELLO, **parameters)  # type: ignore[call-overload]
    body = info.value.body
    assert isinstance(body, dict)
    assert body["param"] == named
    assert f"{named} is not supported by the {provider} provider" in body["message"]
    assert fake_provider.requests_to("anthropic") == []


async def test_logprobs_are_relayed_streamed_and_whole(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Hi", "!"]), Reply(tokens=["Hi", "!"]))
    whole = await client.chat.completions.create(
        model=OPENAI_MODEL,
        messages=HELLO,
        logprobs=True,
        top_logprobs=2,  # type: ignore[arg-type]
    )
    logprobs = whole.choices[0].logprobs
    assert logprobs is not None
    assert [(e.token, e.logprob) for e in logprobs.content or ()] == [("Hi", -0.25), ("!", -0.25)]
    stream = await client.chat.completions.create(
        model=OPENAI_MODEL,
        messages=HELLO,
        logprobs=True,
        stream=True,  # type: ignore[arg-type]
    )
    tokens = [
        entry.token
        async for chunk in stream
        for choice in chunk.choices
        if choice.logprobs is not None
        for entry in choice.logprobs.content or ()
    ]
    assert "".join(tokens) == "Hi!"
    first, second = (r.body for r in fake_provider.requests_to("openai"))
    assert (first["logprobs"], first["top_logprobs"], second["logprobs"]) == (True, 2, True)


async def test_n_above_one_is_a_clear_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="n > 1 is not supported"):
        await client.chat.completions.create(model="scripted/echo", messages=HELLO, n=2)  # type: ignore[arg-type]


@pytest.mark.parametrize("parameter", ["temperature", "top_p"])
async def test_sampling_anthropic_cannot_take_is_a_400_not_a_silent_drop(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, parameter: str
) -> None:
    """Anthropic's Messages API (SDK 2.x) takes neither: a client that sets one is told."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="anthropic/claude-haiku-4-5",
            messages=HELLO,  # type: ignore[arg-type]
            **{parameter: 0.5},  # type: ignore[arg-type]
        )
    assert parameter in caught.value.message
    assert "anthropic" in caught.value.message
    assert fake_provider.requests_to("anthropic") == []
    fake_provider.enqueue("openai", Reply())
    await client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=HELLO,  # type: ignore[arg-type]
        **{parameter: 0.5},  # type: ignore[arg-type]
    )
    (sent,) = fake_provider.requests_to("openai")
    assert sent.body[parameter] == 0.5

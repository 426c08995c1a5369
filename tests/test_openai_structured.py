"""Issue 13, point 2: structured output (`response_format`) on `/v1/chat/completions`.

Passed as it is to OpenAI-compatible servers; on Anthropic a `json_schema` is its native
`output_config.format` (issue 23, with tools: test_issue23_anthropic_structured.py), while
`json_object` (and Bedrock) make the answer the input of a tool the model must call,
returned as the message's content; the local model is constrained by a grammar.
`chat.completions.parse()` and LangChain's `with_structured_output` get their typed object
back from each.
"""

from __future__ import annotations

import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from symposia.container import Container
from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.test_openai_compat import api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # fixtures used here

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
QUESTION = [{"role": "user", "content": "Weather in Paris?"}]
FRAGMENTS = ('{"city": "Pa', 'ris", "sunny": true}')


class Weather(BaseModel):
    city: str
    sunny: bool


def _enqueue(fake: FakeProviderServer, route: str, forced: bool = False) -> None:
    """The model's JSON answer: text, or from Anthropic by a forced tool, its input."""
    if not forced:
        fake.enqueue(route, Reply(tokens=list(FRAGMENTS)))
    else:
        call = FakeToolCall("toolu_1", "Weather", FRAGMENTS)
        fake.enqueue(route, Reply(tokens=[], tool_calls=[call]))


async def test_parse_gets_the_same_object_from_openai_and_anthropic(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    parsed = {}
    for route, model in MODELS.items():
        _enqueue(fake_provider, route)
        completion = await client.chat.completions.parse(
            model=model,
            messages=QUESTION,  # type: ignore[arg-type]
            response_format=Weather,
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "stop"
        assert choice.message.tool_calls in (None, [])
        parsed[route] = choice.message.parsed
    expected = Weather(city="Paris", sunny=True)
    assert parsed == {"openai": expected, "anthropic": expected}
    (to_openai,) = (r.body for r in fake_provider.requests_to("openai"))
    assert to_openai["response_format"]["type"] == "json_schema"
    assert to_openai["response_format"]["json_schema"]["name"] == "Weather"
    assert to_openai["response_format"]["json_schema"]["strict"] is True
    (to_anthropic,) = (r.body for r in fake_provider.requests_to("anthropic"))
    assert "tools" not in to_anthropic
    assert "tool_choice" not in to_anthropic
    fmt = to_anthropic["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"]["properties"] == {
        "city": {"title": "City", "type": "string"},
        "sunny": {"title": "Sunny", "type": "boolean"},
    }


async def test_streamed_structured_output_from_anthropic_is_text(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    _enqueue(fake_provider, "anthropic", forced=True)  # json_object: no closed schema
    stream = await client.chat.completions.create(
        model=MODELS["anthropic"],
        messages=QUESTION,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert Weather.model_validate_json(text) == Weather(city="Paris", sunny=True)
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    (sent,) = fake_provider.requests_to("anthropic")
    assert sent.body["tools"][0]["input_schema"] == {"type": "object"}


async def test_langchain_with_structured_output(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer
) -> None:
    for route, model in MODELS.items():
        _enqueue(fake_provider, route)
        llm = ChatOpenAI(
            model=model,
            base_url=f"{server.base_url}/v1",
            api_key=api_key,
            max_retries=0,  # type: ignore[arg-type]
        )
        answer = await llm.with_structured_output(Weather).ainvoke("Weather in Paris?")
        assert answer == Weather(city="Paris", sunny=True)


async def test_response_format_with_tools_on_anthropic_is_a_400(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    tool = {"type": "function", "function": {"name": "f"}}
    with pytest.raises(openai.BadRequestError, match="response_format together with tools"):
        await client.chat.completions.create(
            model=MODELS["anthropic"],
            messages=QUESTION,  # type: ignore[arg-type]
            tools=[tool],  # type: ignore[list-item]
            response_format={"type": "json_object"},
        )
    assert fake_provider.requests_to("anthropic") == []


@pytest.mark.local_model
async def test_the_local_model_is_held_to_the_schema(
    client: openai.AsyncOpenAI, compat: Container
) -> None:
    if not compat.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    completion = await client.chat.completions.parse(
        model="local/smollm2",
        messages=QUESTION,  # type: ignore[arg-type]
        response_format=Weather,
        max_tokens=60,
        temperature=0,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Weather)

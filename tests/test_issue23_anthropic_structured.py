"""Issue 23, point 4: Anthropic takes tools and structured output together.

A `json_schema` response_format (chat completions) or `text.format` (Responses) is sent as
Anthropic's native structured output, `output_config.format` (the Messages API of SDK 2.x;
the fake upstream checks the shape and that every object of the schema is closed), beside
the client's own tools, so the model may call a tool, then answer to the schema. Models
without it (`FORCED_TOOL_MODELS`) keep the forced tool, and with tools of the client too
they are a 400. Driven by the openai SDK's `parse` and pydantic-ai's `Agent(tools=...,
output_type=NativeOutput(...))`, as a client names an `anthropic/` model through Symposia.
"""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.test_openai_compat import api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # fixtures used here

MODEL = "anthropic/claude-haiku-4-5"
LEGACY = "claude-3-haiku-20240307"
QUESTION = [{"role": "user", "content": "Weather in Paris?"}]
ANSWER = ['{"city": "Pa', 'ris", "sunny": true}']


class Weather(BaseModel):
    city: str
    sunny: bool


class GetForecast(BaseModel):
    """The forecast of a city."""

    city: str


def _output_format(body: dict[str, object]) -> dict[str, object]:
    config = body["output_config"]
    assert isinstance(config, dict)
    fmt = config["format"]
    assert isinstance(fmt, dict)
    assert fmt["type"] == "json_schema"
    return fmt


async def test_parse_with_tools_calls_a_tool_then_answers_to_the_schema(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    call = FakeToolCall("toolu_1", "GetForecast", ('{"city": "Paris"}',))
    fake_provider.enqueue("anthropic", Reply(tokens=[], tool_calls=[call]), Reply(tokens=ANSWER))
    tools = [openai.pydantic_function_tool(GetForecast)]
    first = await client.chat.completions.parse(
        model=MODEL,
        messages=QUESTION,  # type: ignore[arg-type]
        tools=tools,
        response_format=Weather,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (called,) = choice.message.tool_calls or []
    assert called.function.name == "GetForecast"
    assert called.function.parsed_arguments == GetForecast(city="Paris")  # type: ignore[union-attr]
    second = await client.chat.completions.parse(
        model=MODEL,
        messages=[
            *QUESTION,
            choice.message.model_dump(exclude_none=True, exclude={"parsed"}),
            {"role": "tool", "tool_call_id": called.id, "content": "sunny, 21 C"},
        ],  # type: ignore[arg-type]
        tools=tools,
        response_format=Weather,
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.parsed == Weather(city="Paris", sunny=True)
    for sent in fake_provider.requests_to("anthropic"):
        body = sent.body
        assert [tool["name"] for tool in body["tools"]] == ["GetForecast"]  # the client's own
        assert "tool_choice" not in body  # nothing forced
        schema = _output_format(body)["schema"]
        assert schema["properties"] == {
            "city": {"title": "City", "type": "string"},
            "sunny": {"title": "Sunny", "type": "boolean"},
        }
        assert schema["additionalProperties"] is False
    assert fake_provider.requests_to("anthropic")[1].body["messages"][-1]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "sunny, 21 C",
    }


async def test_a_streamed_native_answer_is_text_and_open_objects_are_closed(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("anthropic", Reply(tokens=ANSWER))
    schema = {  # not strict: its objects are open, as Anthropic refuses them
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1},
            "sunny": {"type": "boolean"},
            "extra": {"type": "object", "properties": {}},
        },
        "required": ["city", "sunny"],
    }
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,  # type: ignore[arg-type]
        tools=[{"type": "function", "function": {"name": "get_forecast"}}],
        response_format={"type": "json_schema", "json_schema": {"name": "W", "schema": schema}},
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert Weather.model_validate_json(text) == Weather(city="Paris", sunny=True)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    sent = _output_format(fake_provider.requests_to("anthropic")[0].body)["schema"]
    assert isinstance(sent, dict)
    assert sent["additionalProperties"] is False
    assert sent["properties"]["extra"]["additionalProperties"] is False
    # What Anthropic does not enforce goes to the description, as the SDK's parse does it.
    assert "minLength: 1" in sent["properties"]["city"]["description"]


async def test_responses_text_format_with_tools(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("anthropic", Reply(tokens=ANSWER))
    response = await client.responses.parse(
        model=MODEL,
        input="Weather in Paris?",
        tools=[openai.pydantic_function_tool(GetForecast)],  # type: ignore[list-item]
        text_format=Weather,
    )
    assert response.output_parsed == Weather(city="Paris", sunny=True)
    (sent,) = fake_provider.requests_to("anthropic")
    assert [tool["name"] for tool in sent.body["tools"]] == ["GetForecast"]
    assert _output_format(sent.body)["schema"]["required"] == ["city", "sunny"]


async def test_a_model_without_native_structured_output_keeps_the_forced_tool(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.anthropic_models.append(LEGACY)
    call = FakeToolCall("toolu_1", "Weather", tuple(ANSWER))
    fake_provider.enqueue("anthropic", Reply(tokens=[], tool_calls=[call]))
    completion = await client.chat.completions.parse(
        model=f"anthropic/{LEGACY}",
        messages=QUESTION,  # type: ignore[arg-type]
        response_format=Weather,
    )
    assert completion.choices[0].message.parsed == Weather(city="Paris", sunny=True)
    (sent,) = fake_provider.requests_to("anthropic")
    assert "output_config" not in sent.body
    assert sent.body["tool_choice"] == {"type": "tool", "name": "Weather"}
    with pytest.raises(openai.BadRequestError, match=f"anthropic model {LEGACY}") as refused:
        await client.chat.completions.parse(
            model=f"anthropic/{LEGACY}",
            messages=QUESTION,  # type: ignore[arg-type]
            tools=[openai.pydantic_function_tool(GetForecast)],
            response_format=Weather,
        )
    assert refused.value.param == "response_format"
    assert len(fake_provider.requests_to("anthropic")) == 1


async def test_pydantic_ai_agent_with_tools_and_native_output(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    asked: list[str] = []

    def forecast(city: str) -> str:
        """The forecast of a city."""
        asked.append(city)
        return "sunny"

    provider = OpenAIProvider(openai_client=client)
    for model in (
        OpenAIChatModel(MODEL, provider=provider),
        OpenAIResponsesModel(MODEL, provider=provider),
    ):
        fake_provider.clear()
        call = FakeToolCall("toolu_9", "forecast", ('{"city": "Paris"}',))
        fake_provider.enqueue(
            "anthropic", Reply(tokens=[], tool_calls=[call]), Reply(tokens=ANSWER)
        )
        asked.clear()

        agent = Agent(model, tools=[forecast], output_type=NativeOutput(Weather))
        result = await agent.run("Weather in Paris?")
        assert result.output == Weather(city="Paris", sunny=True)
        assert asked == ["Paris"]
        first, second = (r.body for r in fake_provider.requests_to("anthropic"))
        assert [tool["name"] for tool in first["tools"]] == ["forecast"]
        assert _output_format(first)["schema"]["required"] == ["city", "sunny"]
        assert json.dumps(second["messages"]).count("tool_result") == 1

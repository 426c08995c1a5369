"""Issue 13, point 3: OpenAI's Responses API, driven by the official openai SDK over a real
socket: created streamed and not, retrieved, deleted, chained with `previous_response_id`
across two providers (the chain is Symposia's), and what it would not honour refused."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.test_openai_compat import api_key, client, compat, compat_app, server
from tests.test_openai_structured import MODELS as STRUCTURED_MODELS
from tests.test_openai_structured import Weather
from tests.test_openai_structured import _enqueue as enqueue_structured
from tests.test_openai_tools import CALL_ID, MODELS, enqueue_loop

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # fixtures used here


async def test_a_response_is_created_then_retrieved_and_deleted(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    scripted.add_script("poet", Script(chunks=["Roses ", "are ", "red."]))
    response = await client.responses.create(
        model="scripted/poet", input="Write a poem.", metadata={"run": "7"}
    )
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "Roses are red."
    assert response.model == "scripted/poet"
    assert response.metadata == {"run": "7"}
    assert response.usage is not None
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == response.usage.input_tokens + 3
    (item,) = response.output
    assert item.type == "message"
    assert item.id.startswith("msg_")

    again = await client.responses.retrieve(response.id)
    assert again.model_dump() == response.model_dump()

    deleted = await client.responses.delete(response.id)
    assert deleted is None  # the SDK returns nothing for a delete
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)


async def test_previous_response_id_chains_across_two_providers(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Paris", "."], prompt_tokens=9))
    first = await client.responses.create(
        model="openai/gpt-4o-mini",
        instructions="Answer in one word.",
        input="Capital of France?",
    )
    assert first.output_text == "Paris."
    fake_provider.enqueue("anthropic", Reply(tokens=["About ", "2 million."], prompt_tokens=20))
    second = await client.responses.create(
        model="anthropic/claude-haiku-4-5",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Population?"}]}],
        previous_response_id=first.id,
    )
    assert second.output_text == "About 2 million."
    assert second.previous_response_id == first.id
    (sent,) = fake_provider.requests_to("anthropic")
    # The whole chain went to the second provider; the first's instructions did not.
    assert "system" not in sent.body
    assert [(m["role"], _text(m["content"])) for m in sent.body["messages"]] == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "Population?"),
    ]
    (asked,) = fake_provider.requests_to("openai")
    assert asked.body["messages"][0] == {"role": "system", "content": "Answer in one word."}


async def test_a_streamed_response_sends_openais_typed_events(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    scripted.add_script("poet", Script(chunks=["Roses ", "are ", "red."]))
    stream = await client.responses.create(model="scripted/poet", input="A poem", stream=True)
    events = [event async for event in stream]
    types = [event.type for event in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Roses are red."
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "Roses are red."
    stored = await client.responses.retrieve(completed.response.id)
    assert stored.output_text == "Roses are red."


async def test_the_sdks_stream_helper_reads_it_to_the_final_response(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    scripted.add_script("poet", Script(chunks=["One ", "two."]))
    async with client.responses.stream(model="scripted/poet", input="Count") as stream:
        texts = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(texts) == final.output_text == "One two."


async def test_store_false_keeps_nothing(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    response = await client.responses.create(model="scripted/echo", input="hi", store=False)
    assert response.output_text == "You said: hi"
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(
            model="scripted/echo", input="again", previous_response_id=response.id
        )
    assert "previous response" in caught.value.message


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"background": True}, "background"),
        ({"reasoning": {"summary": "auto"}}, "reasoning.summary"),
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"tools": [{"type": "web_search"}]}, "tools.0.type"),
        ({"tool_choice": {"type": "mcp"}}, "tool_choice"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"input": [{"type": "input_image", "image_url": "x"}]}, "input.0"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role"),
    ],
)
async def test_what_it_would_not_honour_is_a_400_naming_it(
    client: openai.AsyncOpenAI, extra: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {"model": "scripted/echo", "input": "hi", **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.post("/responses", cast_to=object, body=body)
    assert caught.value.param == field or field in caught.value.message


async def test_another_principal_sees_none_of_your_responses(
    client: openai.AsyncOpenAI, compat: Container, server: LiveServer
) -> None:
    mine = await client.responses.create(model="scripted/echo", input="secret")
    _, other_key = await compat.api_keys.create("other")
    async with openai.AsyncOpenAI(
        api_key=other_key, base_url=f"{server.base_url}/v1", max_retries=0
    ) as other:
        with pytest.raises(openai.NotFoundError):
            await other.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.create(
                model="scripted/echo", input="x", previous_response_id=mine.id
            )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content)


class City(BaseModel):
    city: str
    population: int


@pytest.mark.local_model
async def test_structured_output_from_the_local_model_by_its_grammar(
    client: openai.AsyncOpenAI, compat: Container
) -> None:
    """`responses.parse` with a pydantic model: the local model is held to the schema by a
    grammar, so even a 135M-parameter model answers valid, typed JSON."""
    if not compat.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    parsed = await client.responses.parse(
        model="local/smollm2",
        input="The largest city of France and its population, as JSON.",
        text_format=City,
        max_output_tokens=60,
        temperature=0,
    )
    assert isinstance(parsed.output_parsed, City)
    assert parsed.output_parsed.city
    streamed = await client.responses.create(
        model="local/smollm2",
        input="Any JSON object.",
        text={"format": {"type": "json_object"}},
        max_output_tokens=80,
        temperature=0,
    )
    assert isinstance(json.loads(streamed.output_text), dict)


async def test_structured_output_that_cannot_be_honoured_is_a_400(
    client: openai.AsyncOpenAI,
) -> None:
    """Anthropic gets a json_object (no closed schema for its native structured output)
    as a forced tool: with tools of the client's own, it cannot, and says so."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="anthropic/claude-haiku-4-5",
            input="x",
            tools=[RESPONSES_WEATHER_TOOL],  # type: ignore[list-item]
            text={"format": {"type": "json_object"}},
        )
    assert "anthropic" in caught.value.message


RESPONSES_WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_a_function_tool_loop_over_the_responses_api(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, route: str, stream: bool
) -> None:
    """The model asks for the tool; the client runs it and sends a function_call_output
    item with previous_response_id; the model answers. The same both ways."""
    enqueue_loop(fake_provider, route)
    model = MODELS[route]
    if stream:
        async with client.responses.stream(
            model=model, input="Weather in Paris?", tools=[RESPONSES_WEATHER_TOOL]
        ) as events:
            kinds = [e.type async for e in events]
            first = await events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
    else:
        first = await client.responses.create(
            model=model, input="Weather in Paris?", tools=[RESPONSES_WEATHER_TOOL]
        )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.call_id, call.name) == (CALL_ID, "get_weather")
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = await client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
        tools=[RESPONSES_WEATHER_TOOL],
    )
    assert second.output_text == "Sunny there."
    requests = fake_provider.requests_to(route)
    assert len(requests) == 2
    history = requests[1].body["messages"]
    if route == "openai":
        assert history[1]["tool_calls"][0]["id"] == CALL_ID
        assert history[2] == {"role": "tool", "tool_call_id": CALL_ID, "content": "Sunny"}
    else:
        assert history[1]["content"][-1]["type"] == "tool_use"
        assert history[1]["content"][-1]["id"] == CALL_ID
        assert history[2]["content"][0]["type"] == "tool_result"
        assert history[2]["content"][0]["tool_use_id"] == CALL_ID


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_parse_gets_the_same_object_from_openai_and_anthropic(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, stream: bool
) -> None:
    parsed = {}
    for route, model in STRUCTURED_MODELS.items():
        enqueue_structured(fake_provider, route)
        if stream:
            async with client.responses.stream(
                model=model, input="Weather in Paris?", text_format=Weather
            ) as events:
                response = await events.get_final_response()
        else:
            response = await client.responses.parse(
                model=model, input="Weather in Paris?", text_format=Weather
            )
        parsed[route] = response.output_parsed
    assert parsed["openai"] == parsed["anthropic"] == Weather(city="Paris", sunny=True)
    (sent,) = fake_provider.requests_to("openai")
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.body["response_format"]["json_schema"]["name"] == "Weather"

"""Issue 13, point 1: tool calling end to end through `/v1/chat/completions`.

The official openai SDK (sync, as most agent code is) drives a tool-calling loop: the model
asks for a tool, the client runs it and sends the result, the model answers. Through
Symposia to the fake OpenAI server and to the fake Anthropic server (each in its own wire
format), streamed and not, the client sees the same thing both ways.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from symposia.container import Container
from symposia.providers.base import ToolCall
from symposia.providers.scripted import Script, ScriptedProvider
from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.test_openai_compat import api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # the fixtures used here

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = [{"role": "user", "content": "Weather in Paris?"}]
CALL_ID = "call_abc123"
ARGUMENTS = '{"city": "Paris"}'
MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


def get_weather(city: str) -> str:
    return f"Sunny in {city}"


def enqueue_loop(fake: FakeProviderServer, route: str) -> None:
    """The model asks for the tool (its arguments in three pieces), then answers."""
    call = FakeToolCall(CALL_ID, "get_weather", ('{"city"', ': "Pa', 'ris"}'))
    fake.enqueue(route, Reply(tokens=[], tool_calls=[call]), Reply(tokens=["Sunny", " there."]))


def run_loop(base_url: str, key: str, model: str, stream: bool) -> dict[str, Any]:
    """An agent loop as a user writes it with the sync SDK."""
    with openai.OpenAI(api_key=key, base_url=base_url, max_retries=0) as sdk:
        messages: list[Any] = list(QUESTION)
        seen: dict[str, Any] = {}
        for _ in range(3):
            if stream:
                message, finish = _streamed(sdk, model, messages, seen)
            else:
                completion = sdk.chat.completions.create(
                    model=model,
                    messages=messages,
                    tools=[WEATHER_TOOL],  # type: ignore[list-item]
                )
                choice = completion.choices[0]
                message = choice.message.model_dump(exclude_none=True)
                finish = choice.finish_reason
            seen.setdefault("finishes", []).append(finish)
            messages.append(message)
            if finish != "tool_calls":
                seen["answer"] = message["content"]
                return seen
            seen["calls"] = message["tool_calls"]
            for call in message["tool_calls"]:
                result = get_weather(**json.loads(call["function"]["arguments"]))
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    raise AssertionError("the loop did not end")


def _streamed(
    sdk: openai.OpenAI, model: str, messages: list[Any], seen: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """One streamed step, its tool calls put together from their pieces as OpenAI's docs
    show it (the first piece of a call has its index, id and name)."""
    text, calls, finish = "", {}, None
    stream = sdk.chat.completions.create(
        model=model,
        messages=messages,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for piece in choice.delta.tool_calls or ():
                seen.setdefault("pieces", []).append(piece.model_dump(exclude_none=True))
                call = calls.setdefault(piece.index, {"arguments": ""})
                if piece.id:
                    call.update(id=piece.id, name=piece.function.name)  # type: ignore[union-attr]
                call["arguments"] += piece.function.arguments or ""  # type: ignore[union-attr]
            finish = choice.finish_reason or finish
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for _, c in sorted(calls.items())
        ]
    return message, finish


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_tool_loop_gives_the_same_result_through_openai_and_anthropic(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer, stream: bool
) -> None:
    results = {}
    for route, model in MODELS.items():
        enqueue_loop(fake_provider, route)
        base = f"{server.base_url}/v1"
        results[route] = await asyncio.to_thread(run_loop, base, api_key, model, stream)
    pieces = {route: seen.pop("pieces", None) for route, seen in results.items()}
    assert results["openai"] == results["anthropic"]  # how pieces were cut aside
    seen = results["openai"]
    assert seen["finishes"] == ["tool_calls", "stop"]
    assert seen["answer"] == "Sunny there."
    assert seen["calls"] == [
        {
            "id": CALL_ID,
            "type": "function",
            "function": {"name": "get_weather", "arguments": ARGUMENTS},
        }
    ]
    for route in MODELS if stream else ():
        _assert_streamed_as_openai_does(pieces[route])


def _assert_streamed_as_openai_does(pieces: list[dict[str, Any]]) -> None:
    """The index, id, type and name first, then only argument pieces (which pieces
    depends on what arrived together: fragments read at once leave as one)."""
    first, *rest = pieces
    assert {k: v for k, v in first.items() if k != "function"} == {
        "index": 0,
        "id": CALL_ID,
        "type": "function",
    }
    assert first["function"]["name"] == "get_weather"
    assert all(set(p) == {"index", "function"} for p in rest)
    assert all(set(p["function"]) == {"arguments"} for p in rest)
    assert "".join(p["function"]["arguments"] for p in pieces) == ARGUMENTS


async def test_openai_upstream_gets_tools_and_the_history_as_sent(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer
) -> None:
    enqueue_loop(fake_provider, "openai")
    await asyncio.to_thread(run_loop, f"{server.base_url}/v1", api_key, MODELS["openai"], True)
    first, second = (r.body for r in fake_provider.requests_to("openai"))
    assert first["tools"] == [WEATHER_TOOL]
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": CALL_ID,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ARGUMENTS},
                }
            ],
        },
        {"role": "tool", "content": "Sunny in Paris", "tool_call_id": CALL_ID},
    ]


async def test_anthropic_upstream_gets_tool_use_and_tool_result_blocks(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer
) -> None:
    enqueue_loop(fake_provider, "anthropic")
    base = f"{server.base_url}/v1"
    await asyncio.to_thread(run_loop, base, api_key, MODELS["anthropic"], False)
    first, second = (r.body for r in fake_provider.requests_to("anthropic"))
    (tool,) = first["tools"]
    assert tool == {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
    }
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": CALL_ID,
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": CALL_ID, "content": "Sunny in Paris"}
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
async def test_tool_choice_is_mapped_for_anthropic(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, choice: Any, expected: Any
) -> None:
    fake_provider.enqueue("anthropic", Reply())
    await client.chat.completions.create(
        model=MODELS["anthropic"],
        messages=QUESTION,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice=choice,
    )
    (sent,) = fake_provider.requests_to("anthropic")
    assert sent.body["tool_choice"] == expected


async def test_parallel_tool_calls_false_reaches_both_providers(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    for route, model in MODELS.items():
        fake_provider.enqueue(route, Reply())
        await client.chat.completions.create(
            model=model,
            messages=QUESTION,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            parallel_tool_calls=False,
        )
    (openai_body,) = (r.body for r in fake_provider.requests_to("openai"))
    (anthropic_body,) = (r.body for r in fake_provider.requests_to("anthropic"))
    assert openai_body["parallel_tool_calls"] is False
    assert anthropic_body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


async def test_the_scripted_model_calls_tools_deterministically(
    server: LiveServer, api_key: str, scripted: ScriptedProvider
) -> None:
    scripted.add_script(
        "weather",
        Script(
            tool_calls=[ToolCall(CALL_ID, "get_weather", ARGUMENTS)],
            after_tool=Script(chunks=["Sunny", " there."]),
        ),
    )
    base = f"{server.base_url}/v1"
    for stream in (False, True):
        seen = await asyncio.to_thread(run_loop, base, api_key, "scripted/weather", stream)
        assert seen["finishes"] == ["tool_calls", "stop"]
        assert seen["answer"] == "Sunny there."
    answered = scripted.requests[-1].messages[-1]
    assert (answered.role, answered.tool_call_id, answered.content) == (
        "tool",
        CALL_ID,
        "Sunny in Paris",
    )


async def test_legacy_functions_are_answered_in_their_dialect(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    scripted.add_script("legacy", Script(tool_calls=[ToolCall("c1", "get_weather", ARGUMENTS)]))
    completion = await client.chat.completions.create(
        model="scripted/legacy",
        messages=QUESTION,  # type: ignore[arg-type]
        functions=[WEATHER_TOOL["function"]],  # type: ignore[list-item]
        function_call="auto",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call is not None
    assert (choice.message.function_call.name, choice.message.function_call.arguments) == (
        "get_weather",
        ARGUMENTS,
    )
    request = scripted.requests[-1]
    assert [t.name for t in request.tools] == ["get_weather"]
    assert (request.tool_choice, request.parallel_tool_calls) == ("auto", False)


async def test_legacy_function_results_pair_with_their_call(
    client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    scripted.add_script("legacy2", Script(chunks=["ok"]))
    await client.chat.completions.create(
        model="scripted/legacy2",
        messages=[  # type: ignore[list-item]
            *QUESTION,
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": ARGUMENTS},
            },
            {"role": "function", "name": "get_weather", "content": "Sunny in Paris"},
        ],
        functions=[WEATHER_TOOL["function"]],  # type: ignore[list-item]
    )
    _, asked, answered = scripted.requests[-1].messages
    assert asked.tool_calls[0].id == answered.tool_call_id
    assert (asked.tool_calls[0].name, answered.content) == ("get_weather", "Sunny in Paris")


async def test_a_tool_request_to_the_local_model_is_a_400_naming_it(
    client: openai.AsyncOpenAI, compat: Container
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="local/smollm2",
            messages=QUESTION,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
    error = info.value.body
    assert isinstance(error, dict)
    assert error["param"] == "tools"
    assert error["code"] == "unsupported_parameter"
    assert "local provider" in error["message"]
    assert "local/smollm2" in error["message"]


async def test_a_tool_message_without_its_call_id_is_a_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="tool_call_id"):
        await client.chat.completions.create(
            model="scripted/echo",
            messages=[*QUESTION, {"role": "tool", "content": "x"}],  # type: ignore[list-item]
        )


async def test_tool_history_to_the_local_model_is_a_400_too(client: openai.AsyncOpenAI) -> None:
    history = [
        *QUESTION,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "x"},
    ]
    with pytest.raises(openai.BadRequestError, match="tool calls in messages") as info:
        await client.chat.completions.create(model="local/smollm2", messages=history)  # type: ignore[arg-type]
    assert info.value.param == "messages"


async def test_tool_choice_and_parallel_calls_pass_through_to_openai_as_sent(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    for choice in ("required", named):
        fake_provider.enqueue("openai", Reply())
        await client.chat.completions.create(
            model=MODELS["openai"],
            messages=QUESTION,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice=choice,  # type: ignore[arg-type]
            parallel_tool_calls=True,
        )
    bodies = [r.body for r in fake_provider.requests_to("openai")]
    assert [b["tool_choice"] for b in bodies] == ["required", named]
    assert all(b["parallel_tool_calls"] is True for b in bodies)

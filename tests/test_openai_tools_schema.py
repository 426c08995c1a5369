"""Issue 13: tool calls, legacy function calls and logprobs on `/v1/chat/completions`
follow OpenAI's published schemas, streamed and whole, from every provider that has them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.openapi.schemas import conforms
from tests.test_openai_schema import _events, container, database_url, deployed, http

__all__ = ["container", "database_url", "deployed", "http"]  # fixtures used here

TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
ASK = [{"role": "user", "content": "Weather?"}]
HISTORY = [
    *ASK,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_0", "content": "Rain"},
]
MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


def _tool_reply() -> Reply:
    return Reply(tokens=[], tool_calls=[FakeToolCall("call_1", "get_weather", ('{"ci', 'ty": 1}'))])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route", list(MODELS))
async def test_tool_calls_follow_the_schema(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer, route: str, stream: bool
) -> None:
    fake_provider.enqueue(route, _tool_reply())
    body: dict[str, Any] = {"model": MODELS[route], "messages": HISTORY, "tools": [TOOL]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    if not stream:
        completion = response.json()
        conforms("CreateChatCompletionResponse", completion)
        choice = completion["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] is None
        assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": 1}'
        return
    *chunks, done = _events(response.text)
    assert done == "[DONE]"
    for chunk in chunks:
        conforms("CreateChatCompletionStreamResponse", chunk)
    pieces = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"]]
    calls = [p[0] for p in pieces if p]
    assert (calls[0]["id"], calls[0]["function"]["name"]) == ("call_1", "get_weather")
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": 1}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
async def test_legacy_function_calls_and_logprobs_follow_the_schema(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer, stream: bool
) -> None:
    fake_provider.enqueue("openai", _tool_reply(), Reply(tokens=["Hi"]))
    legacy = {
        "model": MODELS["openai"],
        "messages": ASK,
        "functions": [TOOL["function"]],
        "stream": stream,
    }
    logprobs = {"model": MODELS["openai"], "messages": ASK, "logprobs": True, "stream": stream}
    for body in (legacy, logprobs):
        response = await http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        if stream:
            for chunk in _events(response.text)[:-1]:
                conforms("CreateChatCompletionStreamResponse", chunk)
        else:
            conforms("CreateChatCompletionResponse", response.json())

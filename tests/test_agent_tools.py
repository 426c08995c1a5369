"""Issue 13: LangChain's ChatOpenAI (`bind_tools`) and pydantic-ai (an agent with a tool)
run a tool-calling loop through Symposia's chat completions, to the fake OpenAI server
and to the fake Anthropic server: the model asks for the tool, the framework runs it and
sends the result, the model answers. The same result both ways."""

from __future__ import annotations

import json

import openai
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.test_openai_compat import api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # fixtures used here

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def _enqueue(fake: FakeProviderServer, route: str, call_id: str) -> None:
    call = FakeToolCall(call_id, "get_weather", ('{"city": ', '"Paris"}'))
    fake.enqueue(route, Reply(tokens=[], tool_calls=[call]), Reply(tokens=["Sunny", " there."]))


@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
async def test_langchain_bind_tools_loop(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer, streamed: bool
) -> None:
    answers = {}
    for route, model in MODELS.items():
        _enqueue(fake_provider, route, "call_lc1")
        llm = ChatOpenAI(
            model=model,
            base_url=f"{server.base_url}/v1",
            api_key=api_key,
            max_retries=0,  # type: ignore[arg-type]
        ).bind_tools([tool(get_weather)])
        messages: list = [HumanMessage("Weather in Paris?")]  # type: ignore[type-arg]
        if streamed:
            asked = None
            async for chunk in llm.astream(messages):
                asked = chunk if asked is None else asked + chunk
        else:
            asked = await llm.ainvoke(messages)
        assert asked is not None
        assert [(c["name"], c["args"], c["id"]) for c in asked.tool_calls] == [  # type: ignore[attr-defined]
            ("get_weather", {"city": "Paris"}, "call_lc1")
        ]
        messages += [asked, ToolMessage(get_weather("Paris"), tool_call_id="call_lc1")]
        answers[route] = (await llm.ainvoke(messages)).content
        sent = fake_provider.requests_to(route)[-1].body
        assert json.dumps(sent).count("Sunny in Paris") == 1  # the tool's result went up
    assert answers == {"openai": "Sunny there.", "anthropic": "Sunny there."}


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_stream"])
async def test_pydantic_ai_agent_calls_its_tool(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, streamed: bool
) -> None:
    outputs = {}
    for route, model in MODELS.items():
        _enqueue(fake_provider, route, "call_pa1")
        agent = Agent(
            OpenAIChatModel(model, provider=OpenAIProvider(openai_client=client)),
            tools=[get_weather],
        )
        if streamed:
            async with agent.run_stream("Weather in Paris?") as run:
                outputs[route] = await run.get_output()
            messages = run.all_messages()
        else:
            result = await agent.run("Weather in Paris?")
            outputs[route], messages = result.output, result.all_messages()
        returns = [
            part.content
            for message in messages
            for part in message.parts
            if part.part_kind == "tool-return"
        ]
        assert returns == ["Sunny in Paris"]
    assert outputs == {"openai": "Sunny there.", "anthropic": "Sunny there."}

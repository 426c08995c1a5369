"""Issue 13: the agent frameworks stand on Symposia's gateway as on OpenAI: LangChain's
ChatOpenAI and pydantic-ai, over chat completions and over the Responses API."""

from __future__ import annotations

import openai
from langchain_openai import ChatOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from symposia.providers.scripted import Script, ScriptedProvider
from tests.fakes.live import LiveServer
from tests.test_openai_compat import api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # fixtures used here


def _langchain(server: LiveServer, key: str, **options: object) -> ChatOpenAI:
    return ChatOpenAI(
        model="scripted/poet",
        base_url=f"{server.base_url}/v1",
        api_key=key,  # type: ignore[arg-type]
        max_retries=0,
        **options,  # type: ignore[arg-type]
    )


async def test_langchain_chat_completions_and_responses_api(
    server: LiveServer, api_key: str, scripted: ScriptedProvider
) -> None:
    scripted.add_script("poet", Script(chunks=["Roses ", "are ", "red."]))
    plain = await _langchain(server, api_key).ainvoke("A poem")
    assert plain.content == "Roses are red."
    streamed = [c.content async for c in _langchain(server, api_key).astream("A poem")]
    assert "".join(str(c) for c in streamed) == "Roses are red."
    responses = await _langchain(server, api_key, use_responses_api=True).ainvoke("A poem")
    assert responses.text == "Roses are red."
    assert responses.response_metadata["id"].startswith("resp_")


async def test_pydantic_ai_over_chat_completions_and_responses(
    server: LiveServer, api_key: str, client: openai.AsyncOpenAI, scripted: ScriptedProvider
) -> None:
    scripted.add_script("poet", Script(chunks=["Roses ", "are ", "red."]))
    provider = OpenAIProvider(openai_client=client)
    for model in (
        OpenAIChatModel("scripted/poet", provider=provider),
        OpenAIResponsesModel("scripted/poet", provider=provider),
    ):
        result = await Agent(model).run("A poem")
        assert result.output == "Roses are red."
        async with Agent(model).run_stream("A poem") as run:
            assert await run.get_output() == "Roses are red."

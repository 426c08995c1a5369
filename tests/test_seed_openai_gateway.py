"""Seed 004, the OpenAI-compatible gateway: the curls of its quick start and its own
`test_sse.py`, against Symposia (docs/seeds.md). Verbatim, with the document's bare
`gpt-3.5-turbo`, under the seed's `.env` (its OpenAI key, and a base URL at the fake
upstream); and with a scripted model, which needs no upstream."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import pytest

from symposia.settings import Settings
from tests.conftest import settings_from_dotenv
from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer

SEED_MODEL = "gpt-3.5-turbo"
MODEL = "scripted/echo"
HELLO = [{"role": "user", "content": "Hello, how are you?"}]
HELLO_ECHO = "Hello, how are you?"  # what scripted/echo answers
UPSTREAM_ANSWER = "Hello, world!"  # what the fake upstream answers

# The document's test_sse.py, as it ships, with the one guard it needs: the stream ends
# with OpenAI's `data: [DONE]`, which is not JSON (the script would stop on it).
TEST_SSE = """
import httpx
import json

async def test_streaming():
    async with httpx.AsyncClient() as client:
        async with client.stream(
            'POST',
            'http://localhost:8000/api/v1/chat/completions',
            json={
                'messages': [{'role': 'user', 'content': 'Count to 5'}],
                'model': 'gpt-3.5-turbo',
                'stream': True
            },
            timeout=30.0
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith('data: '):
                    if line == 'data: [DONE]':  # the guard
                        break
                    data = json.loads(line[6:])
                    print(data)

import asyncio
asyncio.run(test_streaming())
"""


def _streamed(lines: list[str]) -> tuple[list[dict[str, Any]], bool]:
    chunks: list[dict[str, Any]] = []
    done = False
    for line in lines:
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            chunks.append(json.loads(line[6:]))
    return chunks, done


async def _stream(client: httpx.AsyncClient, model: str, answer: str = HELLO_ECHO) -> None:
    body = {"messages": HELLO, "model": model, "stream": True}
    async with client.stream("POST", "/api/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        lines = [line async for line in response.aiter_lines()]
    chunks, done = _streamed(lines)
    assert done
    assert chunks
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert answer in text


async def _complete(client: httpx.AsyncClient, model: str, answer: str = HELLO_ECHO) -> None:
    body = {"messages": HELLO, "model": model, "stream": False}
    response = await client.post("/api/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert answer in completion["choices"][0]["message"]["content"]
    assert {"prompt_tokens", "completion_tokens", "total_tokens"} <= completion["usage"].keys()


async def test_health_and_models(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    models = (await client.get("/api/v1/models")).json()
    assert models["object"] == "list"
    assert any(m["id"] == MODEL and m["object"] == "model" for m in models["data"])


async def test_chat_completion_streaming(client: httpx.AsyncClient) -> None:
    await _stream(client, MODEL)


async def test_chat_completion_non_streaming(client: httpx.AsyncClient) -> None:
    await _complete(client, MODEL)


async def _run_test_sse(live: LiveServer, model: str) -> list[str]:
    script = TEST_SSE.replace("http://localhost:8000", live.base_url).replace(SEED_MODEL, model)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_its_test_sse_script(live: LiveServer) -> None:
    printed = await _run_test_sse(live, MODEL)
    assert printed
    assert all("chat.completion.chunk" in line for line in printed)


def seed_dotenv(upstream: FakeProviderServer) -> str:
    """The seed's `.env` (docs/seeds.md): its OpenAI key and default model; the base URL
    stands for api.openai.com; DEV_MODE because the seed's clients send no credential."""
    return (
        "OPENAI_API_KEY=sk-seed-gateway\n"
        f"OPENAI_BASE_URL={upstream.openai_base_url}\n"
        "DEFAULT_MODEL=gpt-3.5-turbo\n"
        "DEV_MODE=true\n"
    )


class TestUnderTheSeedsEnv:
    """The document's requests verbatim: `gpt-3.5-turbo` is OpenAI's, by its form."""

    @pytest.fixture
    def settings(self, database_url: str, fake_provider: FakeProviderServer) -> Settings:
        fake_provider.openai_models = ["gpt-3.5-turbo", "gpt-4o-mini"]  # as OpenAI lists
        return settings_from_dotenv(seed_dotenv(fake_provider), database_url=database_url)

    async def test_the_default_model_is_the_seeds(self, settings: Settings) -> None:
        assert settings.default_model == SEED_MODEL

    async def test_chat_completion_streaming(
        self, client: httpx.AsyncClient, fake_provider: FakeProviderServer
    ) -> None:
        await _stream(client, SEED_MODEL, UPSTREAM_ANSWER)
        assert _upstream_models(fake_provider) == [SEED_MODEL]

    async def test_chat_completion_non_streaming(
        self, client: httpx.AsyncClient, fake_provider: FakeProviderServer
    ) -> None:
        await _complete(client, SEED_MODEL, UPSTREAM_ANSWER)
        (request,) = fake_provider.requests_to("openai")
        assert request.body["model"] == SEED_MODEL
        assert request.headers["authorization"] == "Bearer sk-seed-gateway"

    async def test_its_test_sse_script(
        self, live: LiveServer, fake_provider: FakeProviderServer
    ) -> None:
        printed = await _run_test_sse(live, SEED_MODEL)
        assert printed
        assert all("chat.completion.chunk" in line for line in printed)
        assert "".join(printed).count("'content': ") >= 1
        assert _upstream_models(fake_provider) == [SEED_MODEL]


def _upstream_models(upstream: FakeProviderServer) -> list[str]:
    return [request.body["model"] for request in upstream.requests_to("openai")]

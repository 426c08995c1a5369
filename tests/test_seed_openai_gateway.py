"""Seed 004, the OpenAI-compatible gateway: the curls of its quick start and its own
`test_sse.py`, against Symposia (docs/seeds.md). The document's model, the bare
`gpt-3.5-turbo`, needs the model routing of the gateway issue: those requests are
tried verbatim (expected to fail until then) and with a scripted model."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
import pytest

from tests.fakes.live import LiveServer

SEED_MODEL = "gpt-3.5-turbo"
MODEL = "scripted/echo"
NEEDS_ROUTING = pytest.mark.xfail(reason="needs model routing from g-models", strict=False)
HELLO = [{"role": "user", "content": "Hello, how are you?"}]

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


async def _stream(client: httpx.AsyncClient, model: str) -> None:
    body = {"messages": HELLO, "model": model, "stream": True}
    async with client.stream("POST", "/api/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        lines = [line async for line in response.aiter_lines()]
    chunks, done = _streamed(lines)
    assert done
    assert chunks
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Hello, how are you?" in text


async def _complete(client: httpx.AsyncClient, model: str) -> None:
    body = {"messages": HELLO, "model": model, "stream": False}
    response = await client.post("/api/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert "Hello, how are you?" in completion["choices"][0]["message"]["content"]
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


@NEEDS_ROUTING
async def test_chat_completion_streaming_verbatim(client: httpx.AsyncClient) -> None:
    await _stream(client, SEED_MODEL)


@NEEDS_ROUTING
async def test_chat_completion_non_streaming_verbatim(client: httpx.AsyncClient) -> None:
    await _complete(client, SEED_MODEL)


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


@NEEDS_ROUTING
async def test_its_test_sse_script_verbatim(live: LiveServer) -> None:
    printed = await _run_test_sse(live, SEED_MODEL)
    assert printed
    assert all("chat.completion.chunk" in line for line in printed)

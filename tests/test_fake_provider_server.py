"""The fake provider server, driven by the real openai and anthropic SDK clients.

Besides checking the fake, these tests pin down which exception each SDK raises for each
injected fault: the provider adapters depend on exactly that.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk

from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.helpers import eventually

OPENAI_MODEL = "gpt-4o-mini"
# Not "claude-sonnet-4-5": the anthropic SDK warns (DeprecationWarning) that it is deprecated.
ANTHROPIC_MODEL = "claude-haiku-4-5"
TEXT = "Hello, world!"


@pytest.fixture
async def server() -> AsyncIterator[FakeProviderServer]:
    async with FakeProviderServer() as fake:
        yield fake
        assert fake.handler_errors == []


@pytest.fixture
async def oai(server: FakeProviderServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.openai_base_url, max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def ant(server: FakeProviderServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-test", base_url=server.anthropic_base_url, max_retries=0
    ) as client:
        yield client


async def openai_stream(
    client: openai.AsyncOpenAI, **kwargs: Any
) -> openai.AsyncStream[ChatCompletionChunk]:
    stream: openai.AsyncStream[ChatCompletionChunk] = await client.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, **kwargs
    )
    return stream


async def anthropic_stream(
    client: anthropic.AsyncAnthropic,
) -> anthropic.AsyncStream[RawMessageStreamEvent]:
    return await client.messages.create(
        model=ANTHROPIC_MODEL,
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )


async def collect_openai(stream: openai.AsyncStream[ChatCompletionChunk], sink: list[str]) -> None:
    """Append each text delta to `sink`, so what arrived before an error stays visible."""
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                sink.append(choice.delta.content)


async def collect_anthropic(
    stream: anthropic.AsyncStream[RawMessageStreamEvent], sink: list[str]
) -> None:
    async for event in stream:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            sink.append(event.delta.text)


# --------------------------------------------------------------------------------------------
# Normal replies
# --------------------------------------------------------------------------------------------


async def test_openai_stream_with_usage(
    server: FakeProviderServer, oai: openai.AsyncOpenAI
) -> None:
    stream = await openai_stream(oai, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {OPENAI_MODEL}
    assert {c.object for c in chunks} == {"chat.completion.chunk"}

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (11, 4)
    assert last.usage.total_tokens == 15
    assert all(c.usage is None for c in chunks[:-1])
    assert server.requests_to("openai")[0].body["stream_options"] == {"include_usage": True}


async def test_openai_stream_without_usage(
    server: FakeProviderServer, oai: openai.AsyncOpenAI
) -> None:
    server.enqueue("openai", Reply(tokens=["a", "b"]), Reply(include_usage=False))

    chunks = [chunk async for chunk in await openai_stream(oai)]
    assert all(c.choices and c.usage is None for c in chunks)
    assert "usage" not in chunks[0].model_dump(exclude_unset=True)

    # Asked for, but the reply withholds it (as some OpenAI-compatible servers do).
    stream = await openai_stream(oai, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)


async def test_anthropic_stream(server: FakeProviderServer, ant: anthropic.AsyncAnthropic) -> None:
    events = [event async for event in await anthropic_stream(ant)]

    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.type == "message_start"
    assert start.message.id.startswith("msg_")
    assert start.message.model == ANTHROPIC_MODEL
    assert start.message.usage.input_tokens == 11
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 4
    sink: list[str] = []
    for event in events:
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            sink.append(event.delta.text)
    assert "".join(sink) == TEXT


async def test_anthropic_stream_helper(
    server: FakeProviderServer, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("anthropic", Reply(tokens=["Hi", " there"], finish_reason="length"))
    async with ant.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join([part async for part in stream.text_stream])
        message = await stream.get_final_message()

    assert text == "Hi there"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hi there"
    assert message.stop_reason == "max_tokens"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 2)


async def test_openai_non_streaming(server: FakeProviderServer, oai: openai.AsyncOpenAI) -> None:
    server.enqueue("openai", Reply(completion_tokens=7, finish_reason="length"))
    completion = await oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 7)


async def test_anthropic_non_streaming(
    server: FakeProviderServer, ant: anthropic.AsyncAnthropic
) -> None:
    message = await ant.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == ANTHROPIC_MODEL
    assert message.content[0].type == "text"
    assert message.content[0].text == TEXT
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 4)


async def test_replies_are_consumed_in_order(
    server: FakeProviderServer, oai: openai.AsyncOpenAI
) -> None:
    server.enqueue("openai", Reply(tokens=["one"]), Reply(tokens=["two"]))
    texts = []
    for _ in range(3):
        completion = await oai.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        texts.append(completion.choices[0].message.content)
    assert texts == ["one", "two", TEXT]


async def test_models_list(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    openai_models = [model async for model in oai.models.list()]
    assert [m.id for m in openai_models] == ["gpt-4o-mini", "gpt-4o"]
    assert openai_models[0].owned_by == "fake"

    server.anthropic_models = ["claude-haiku-4-5"]
    anthropic_models = [model async for model in ant.models.list()]
    assert [m.id for m in anthropic_models] == ["claude-haiku-4-5"]
    assert anthropic_models[0].type == "model"
    assert anthropic_models[0].created_at.year == 2025

    assert [r.path for r in server.requests] == ["/v1/models", "/v1/models"]
    assert server.requests_to("openai") == server.requests_to("anthropic") == []


async def test_models_list_failure(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.models_status = 401
    with pytest.raises(openai.AuthenticationError):
        await oai.models.list()
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await ant.models.list()
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }


# --------------------------------------------------------------------------------------------
# Error statuses
# --------------------------------------------------------------------------------------------


async def test_rate_limit(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    limited = Reply(status=429, headers={"Retry-After": "2"})
    server.enqueue("openai", limited)
    server.enqueue("anthropic", limited)

    with pytest.raises(openai.RateLimitError) as oai_error:
        await openai_stream(oai)
    assert oai_error.value.status_code == 429
    assert oai_error.value.response.headers["retry-after"] == "2"
    assert oai_error.value.code == "rate_limit_exceeded"

    with pytest.raises(anthropic.RateLimitError) as ant_error:
        await anthropic_stream(ant)
    assert ant_error.value.status_code == 429
    assert ant_error.value.response.headers["retry-after"] == "2"
    assert ant_error.value.type == "rate_limit_error"


async def test_custom_error_body(server: FakeProviderServer, oai: openai.AsyncOpenAI) -> None:
    body = {"error": {"message": "quota", "type": "insufficient_quota", "param": None, "code": "q"}}
    server.enqueue("openai", Reply(status=429, error_body=body))
    with pytest.raises(openai.RateLimitError) as caught:
        await openai_stream(oai)
    assert caught.value.body == body["error"]
    assert caught.value.type == "insufficient_quota"


async def test_server_errors(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("anthropic", Reply(status=529), Reply(status=503), Reply(status=500))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await anthropic_stream(ant)
    assert isinstance(overloaded.value, anthropic.InternalServerError)
    assert isinstance(overloaded.value, anthropic.APIStatusError)
    assert overloaded.value.status_code == 529
    assert overloaded.value.type == "overloaded_error"
    with pytest.raises(anthropic.ServiceUnavailableError):
        await anthropic_stream(ant)
    with pytest.raises(anthropic.InternalServerError) as internal:
        await anthropic_stream(ant)
    assert type(internal.value) is anthropic.InternalServerError

    server.enqueue("openai", Reply(status=529), Reply(status=503))
    for status in (529, 503):
        with pytest.raises(openai.InternalServerError) as caught:
            await openai_stream(oai)
        assert caught.value.status_code == status
        assert caught.value.type == "server_error"


async def test_sdk_retries_are_visible(server: FakeProviderServer) -> None:
    fast_retry = Reply(status=429, headers={"retry-after-ms": "10"})
    server.enqueue("openai", fast_retry)
    server.enqueue("anthropic", fast_retry)
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.openai_base_url, max_retries=1
    ) as oai:
        chunks = [chunk async for chunk in await openai_stream(oai)]
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-test", base_url=server.anthropic_base_url, max_retries=1
    ) as ant:
        events = [event async for event in await anthropic_stream(ant)]

    assert chunks
    assert events
    for route in ("openai", "anthropic"):
        retries = [r.headers["x-stainless-retry-count"] for r in server.requests_to(route)]
        assert retries == ["0", "1"]


# --------------------------------------------------------------------------------------------
# Transport faults
# --------------------------------------------------------------------------------------------


async def test_reset(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("openai", Reply(reset=True), Reply(reset=True))
    server.enqueue("anthropic", Reply(reset=True), Reply(reset=True))

    with pytest.raises(openai.APIConnectionError) as oai_error:
        await openai_stream(oai)
    assert not isinstance(oai_error.value, openai.APITimeoutError)
    assert isinstance(oai_error.value.__cause__, httpx2.TransportError)
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}]
        )

    with pytest.raises(anthropic.APIConnectionError) as ant_error:
        await anthropic_stream(ant)
    assert not isinstance(ant_error.value, anthropic.APITimeoutError)
    assert isinstance(ant_error.value.__cause__, httpx2.TransportError)
    with pytest.raises(anthropic.APIConnectionError):
        await ant.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert len(server.requests) == 4  # each was read and recorded before the reset


async def test_cut_openai(server: FakeProviderServer, oai: openai.AsyncOpenAI) -> None:
    server.enqueue("openai", Reply(cut_after=2))
    sink: list[str] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        await collect_openai(await openai_stream(oai), sink)
    assert sink == ["Hello", ","]
    # The SDK wraps the transport error of an unfinished chunked body.
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert "incomplete chunked read" in str(caught.value.__cause__)
    assert server.disconnects == []  # the server hung up, not the client


async def test_cut_anthropic(server: FakeProviderServer, ant: anthropic.AsyncAnthropic) -> None:
    server.enqueue("anthropic", Reply(cut_after=2))
    sink: list[str] = []
    # The anthropic SDK does NOT wrap errors raised while iterating a stream.
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        await collect_anthropic(await anthropic_stream(ant), sink)
    assert sink == ["Hello", ","]
    assert server.disconnects == []


async def test_stall_then_client_leaves(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("openai", Reply(stall_after=1))
    server.enqueue("anthropic", Reply(stall_after=1))

    oai_stream = await openai_stream(oai)
    sink: list[str] = []
    waiting_since = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(collect_openai(oai_stream, sink), 0.3)
    assert sink == ["Hello"]
    await oai_stream.close()
    await eventually(lambda: len(server.disconnects) == 1)
    # Recorded when the client went away, not when the stall began.
    assert server.disconnects[0] >= waiting_since + 0.25

    ant_stream = await anthropic_stream(ant)
    sink = []
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(collect_anthropic(ant_stream, sink), 0.3)
    assert sink == ["Hello"]
    await ant_stream.close()
    await eventually(lambda: len(server.disconnects) == 2)


async def test_stop_ends_stalled_streams(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("openai", Reply(stall_after=1))
    server.enqueue("anthropic", Reply(stall_after=1))
    oai_sink: list[str] = []
    ant_sink: list[str] = []
    oai_task = asyncio.create_task(collect_openai(await openai_stream(oai), oai_sink))
    ant_task = asyncio.create_task(collect_anthropic(await anthropic_stream(ant), ant_sink))
    await eventually(lambda: oai_sink == ["Hello"] and ant_sink == ["Hello"])
    assert not oai_task.done()
    assert not ant_task.done()

    await asyncio.wait_for(server.stop(), 1)

    with pytest.raises(openai.APIConnectionError):
        await asyncio.wait_for(oai_task, 1)
    with pytest.raises(httpx2.RemoteProtocolError):
        await asyncio.wait_for(ant_task, 1)
    assert server.disconnects == []


async def test_client_leaves_during_delay(
    server: FakeProviderServer, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("anthropic", Reply(tokens=["a", "b", "c"], delay=0.2))
    stream = await anthropic_stream(ant)
    async for event in stream:
        if event.type == "content_block_delta":
            break
    await stream.close()
    await eventually(lambda: len(server.disconnects) == 1)


async def test_delay_paces_tokens(server: FakeProviderServer, oai: openai.AsyncOpenAI) -> None:
    server.enqueue("openai", Reply(tokens=["a", "b", "c"], delay=0.1))
    arrivals: list[float] = []
    async for chunk in await openai_stream(oai):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(gap >= 0.08 for gap in gaps)
    assert server.disconnects == []


# --------------------------------------------------------------------------------------------
# Content faults
# --------------------------------------------------------------------------------------------


async def test_split_utf8(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    tokens = ["é", "€", "😀"]
    server.enqueue("openai", Reply(tokens=tokens, split_utf8=True))
    server.enqueue("anthropic", Reply(tokens=tokens, split_utf8=True))

    oai_sink: list[str] = []
    await collect_openai(await openai_stream(oai), oai_sink)
    assert oai_sink == tokens
    ant_sink: list[str] = []
    await collect_anthropic(await anthropic_stream(ant), ant_sink)
    assert ant_sink == tokens


async def test_malformed_json(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("openai", Reply(malformed_at=1))
    server.enqueue("anthropic", Reply(malformed_at=1))

    # Neither SDK wraps the decode error.
    oai_sink: list[str] = []
    with pytest.raises(json.JSONDecodeError):
        await collect_openai(await openai_stream(oai), oai_sink)
    assert oai_sink == ["Hello"]
    ant_sink: list[str] = []
    with pytest.raises(json.JSONDecodeError):
        await collect_anthropic(await anthropic_stream(ant), ant_sink)
    assert ant_sink == ["Hello"]


async def test_error_event_anthropic(
    server: FakeProviderServer, ant: anthropic.AsyncAnthropic
) -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    server.enqueue("anthropic", Reply(error_event=error))
    stream = await anthropic_stream(ant)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect_anthropic(stream, [])
    # The status error class follows the HTTP status, which was 200: the plain base class.
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert caught.value.body == {"type": "error", "error": error}


async def test_error_event_openai(server: FakeProviderServer, oai: openai.AsyncOpenAI) -> None:
    error = {"message": "The server had an error", "type": "server_error", "param": None}
    server.enqueue("openai", Reply(error_event=error))
    stream = await openai_stream(oai)
    with pytest.raises(openai.APIError) as caught:
        await collect_openai(stream, [])
    # Not an APIStatusError: there is no status code to go with an in-stream error.
    assert type(caught.value) is openai.APIError
    assert caught.value.message == "The server had an error"
    assert caught.value.body == error
    assert caught.value.type == "server_error"


# --------------------------------------------------------------------------------------------
# Recording and raw HTTP
# --------------------------------------------------------------------------------------------


async def test_requests_are_recorded(server: FakeProviderServer) -> None:
    headers = {"HTTP-Referer": "https://symposia.test", "X-Title": "Symposia"}
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.openai_base_url, max_retries=0, default_headers=headers
    ) as oai:
        before = time.monotonic()
        [_ async for _ in await openai_stream(oai, temperature=0.5)]
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-test", base_url=server.anthropic_base_url, max_retries=0
    ) as ant:
        await ant.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hey"}]
        )

    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["http-referer"] == "https://symposia.test"
    assert first.headers["x-title"] == "Symposia"
    assert first.headers["x-stainless-retry-count"] == "0"
    assert all(name == name.lower() for name in first.headers)
    assert first.body == {
        "model": OPENAI_MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "temperature": 0.5,
    }
    assert before <= first.at <= second.at

    assert (second.method, second.path) == ("POST", "/v1/messages")
    # anthropic 2.x authenticates with a bearer token, not x-api-key.
    assert second.headers["authorization"] == "Bearer sk-ant-test"
    assert "x-api-key" not in second.headers
    assert "anthropic-version" in second.headers
    assert second.body["messages"] == [{"role": "user", "content": "hey"}]
    assert server.requests_to("openai") == [first]
    assert server.requests_to("anthropic") == [second]


async def test_raw_http(server: FakeProviderServer) -> None:
    async def chunked_body() -> AsyncIterator[bytes]:
        yield b'{"model": "gpt-4o", '
        yield b'"messages": []}'

    async with httpx.AsyncClient(base_url=server.base_url) as client:
        missing = await client.get("/v1/nothing")
        posted = await client.post("/v1/chat/completions", content=chunked_body())

    assert missing.status_code == 404
    assert missing.headers["connection"] == "close"
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert posted.status_code == 200
    assert posted.json()["choices"][0]["message"]["content"] == TEXT
    request = server.requests[-1]
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == {"model": "gpt-4o", "messages": []}


async def test_error_after_tokens_comes_in_the_same_write(
    server: FakeProviderServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    server.enqueue("openai", Reply(tokens=["a", "b", "c"], error_event=error, error_after=2))
    server.enqueue("anthropic", Reply(tokens=["a", "b", "c"], error_event=error, error_after=2))
    oai_sink: list[str] = []
    with pytest.raises(openai.APIError):
        await collect_openai(await openai_stream(oai), oai_sink)
    assert oai_sink == ["a", "b"]
    ant_sink: list[str] = []
    with pytest.raises(anthropic.APIStatusError):
        await collect_anthropic(await anthropic_stream(ant), ant_sink)
    assert ant_sink == ["a", "b"]
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        server.enqueue("openai", Reply(tokens=["a", "b"], error_event=error, error_after=2))
        body = {"model": OPENAI_MODEL, "messages": [], "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
    joined = b"".join(chunks)
    last_text = joined.index(b'"content":"b"')
    assert joined.index(b'"error"') > last_text
    # Both token events and the error leave in one HTTP chunk (one write).
    assert b"\r\n" not in joined[last_text : joined.index(b'"error"')]

"""The OpenAI-compatible API, driven by the official openai SDK over a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.providers.base import ChatMessage, CompletionRequest
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.streaming.openai_chunks import ChunkEncoder, encode_stream
from tests.conftest import remote_settings
from tests.fakes.live import LiveServer, start_live_server
from tests.fakes.provider_server import FakeProviderServer, Reply

KEY_HEADER = "Authorization"


@pytest.fixture
async def compat_app(
    fake_provider: FakeProviderServer, database_url: str, scripted: ScriptedProvider
) -> AsyncIterator[FastAPI]:
    settings = remote_settings(
        fake_provider,
        database_url=database_url,
        dev_mode=False,
        basic_auth_user="admin",
        basic_auth_pw_hash="$2b$04$" + "x" * 53,
        rate_limit_chat="1000/minute",
    )
    providers = default_providers(settings)
    providers.register(scripted)
    application = create_app(settings, providers)
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


@pytest.fixture
def compat(compat_app: FastAPI) -> Container:
    return container_of(compat_app)


@pytest.fixture
async def server(compat_app: FastAPI) -> AsyncIterator[LiveServer]:
    async with start_live_server(compat_app) as live:
        yield live


@pytest.fixture
async def api_key(compat: Container) -> str:
    _, key = await compat.api_keys.create("sdk")
    return key


@pytest.fixture
async def client(server: LiveServer, api_key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=api_key, base_url=f"{server.base_url}/v1", max_retries=0
    ) as sdk:
        yield sdk


HELLO = [{"role": "user", "content": "hello world"}]


async def test_async_sdk_streaming_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="scripted/echo",
        messages=HELLO,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: hello world"
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-")


async def test_async_sdk_non_streaming(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="scripted/echo",
        max_completion_tokens=3,
        temperature=0.2,
        top_p=0.9,
        user="u1",
        messages=[
            {"role": "system", "content": "Be brief."},  # type: ignore[list-item]
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ],
        extra_body={"seed": 7, "logit_bias": {}},  # a script ignores both
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "You said: ab"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_sync_sdk_streaming_and_models(server: LiveServer, api_key: str) -> None:
    def use_sync_client() -> tuple[str, list[str], str]:
        with openai.OpenAI(api_key=api_key, base_url=f"{server.base_url}/v1", max_retries=0) as sdk:
            stream = sdk.chat.completions.create(
                model="scripted/echo",
                messages=HELLO,  # type: ignore[arg-type]
                stream=True,
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            models = [m.id for m in sdk.models.list()]
            whole = sdk.chat.completions.create(
                model="scripted/count",
                messages=HELLO,  # type: ignore[arg-type]
                max_tokens=3,
            )
            return text, models, whole.choices[0].message.content or ""

    text, models, whole = await asyncio.to_thread(use_sync_client)
    assert text == "You said: hello world"
    assert {"scripted/echo", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"} <= set(models)
    assert whole == "1 2 3"


async def test_models_list_shape(client: openai.AsyncOpenAI) -> None:
    models = [m async for m in client.models.list()]
    entry = next(m for m in models if m.id == "openai/gpt-4o")
    assert (entry.object, entry.owned_by) == ("model", "openai")


async def test_models_retrieve_takes_ids_with_a_slash(
    client: openai.AsyncOpenAI, compat: Container
) -> None:
    """The SDK sends `local/smollm2` as `local%2Fsmollm2`; both spellings name the model."""
    ids = ["scripted/echo", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    if compat.providers.get("local").configured:
        ids.append("local/smollm2")
    for model_id in ids:
        model = await client.models.retrieve(model_id)
        assert (model.id, model.object) == (model_id, "model")
        assert model.owned_by == model_id.partition("/")[0]
    for missing in ("scripted/nope", "openai/gpt-nope", "nope/x", "nope"):
        with pytest.raises(openai.NotFoundError) as refused:
            await client.models.retrieve(missing)
        assert refused.value.code == "model_not_found"


@pytest.mark.parametrize("route", ["openai", "anthropic"])
async def test_upstream_providers_through_the_relay(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, route: str
) -> None:
    fake_provider.enqueue(route, Reply(tokens=["Up", "stream"], prompt_tokens=5))
    model = "openai/gpt-4o-mini" if route == "openai" else "anthropic/claude-haiku-4-5"
    stream = await client.chat.completions.create(
        model=model,
        messages=HELLO,
        stream=True,
        stop=["zzz"],  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Upstream"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 2)
    (sent,) = fake_provider.requests_to(route)
    assert sent.body["stop" if route == "openai" else "stop_sequences"] == ["zzz"]


@pytest.mark.local_model
async def test_the_local_model_through_the_relay(
    client: openai.AsyncOpenAI, compat: Container
) -> None:
    if not compat.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    completion = await client.chat.completions.create(
        model="local/smollm2", messages=HELLO, max_tokens=8, temperature=0
    )  # type: ignore[arg-type]
    assert (completion.choices[0].message.content or "").strip()
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 8


async def test_stop_sequences_hold_for_every_provider(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="scripted/count", messages=HELLO, max_tokens=10, stop=[" 5"]
    )  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "1 2 3 4"
    assert completion.choices[0].finish_reason == "stop"


async def test_errors_are_the_sdks_own_exceptions(
    client: openai.AsyncOpenAI, server: LiveServer, fake_provider: FakeProviderServer
) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="nope/x", messages=HELLO)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(
            model="scripted/echo",
            messages=HELLO,  # type: ignore[arg-type]
            temperature=5,
        )
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="scripted/echo",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",  # type: ignore[list-item]
                            "image_url": {"url": "x"},
                        }
                    ],
                }
            ],
        )
    async with openai.AsyncOpenAI(
        api_key="sym_000000000000_" + "A" * 43, base_url=f"{server.base_url}/v1", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError) as denied:
            await wrong.models.list()
    assert denied.value.status_code == 401
    fake_provider.enqueue("openai", *[Reply(status=429, headers={"Retry-After": "0"})] * 3)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        )
    assert limited.value.response.headers["retry-after"] == "1"
    fake_provider.enqueue("openai", Reply(status=401))
    with pytest.raises(openai.InternalServerError) as upstream:  # our upstream key: a 502
        await client.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
    assert upstream.value.status_code == 502
    assert "OPENAI_API_KEY" in str(upstream.value)


async def test_an_error_after_streaming_began_is_a_final_error_chunk(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["a", "b", "c"], cut_after=2))
    stream = await client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as broken:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content if chunk.choices else None)
    assert received[0] == ""  # the role chunk
    assert "".join(filter(None, received)) == "ab"  # what arrived at once may be one chunk
    assert broken.value.code in ("stream_error", "connection_error")


async def test_rate_limits_apply(compat: Container, server: LiveServer, api_key: str) -> None:
    compat.limiter._items["chat"] = __import__("limits").parse("2/minute")
    async with openai.AsyncOpenAI(
        api_key=api_key, base_url=f"{server.base_url}/v1", max_retries=0
    ) as sdk:
        for _ in range(2):
            await sdk.chat.completions.create(model="scripted/echo", messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model="scripted/echo", messages=HELLO)  # type: ignore[arg-type]


def _chunks(body: str) -> list[Any]:
    assert body.endswith("data: [DONE]\n\n")
    events = body.split("\n\n")
    assert events[-1] == ""
    out = []
    for event in events[:-1]:
        assert event.startswith("data: ")
        assert "\n" not in event  # one line per event, framing exact
        payload = event[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def _normalised(chunks: list[Any]) -> list[Any]:
    """Ids, times, model names and system fingerprints differ by nature; usage *_details
    are OpenAI's breakdowns (cached, reasoning tokens) that a relay cannot know."""
    for chunk in chunks:
        if isinstance(chunk, dict):
            chunk.update(id="X", created=0, model="M", system_fingerprint="fp")
            if chunk.get("usage"):
                chunk["usage"] = {
                    k: v for k, v in chunk["usage"].items() if not k.endswith("_details")
                }
    return chunks


async def test_stream_bytes_match_openais_format(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer
) -> None:
    """Symposia relaying the fake OpenAI server must frame exactly what the fake sends."""
    body = {
        "model": "openai/gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tokens = ["Hel", "lo", " ☃", "!"]
    # Paced, so each upstream event arrives in its own read: Symposia relays what one read
    # brings as one chunk, and here the chunks must match one for one.
    fake_provider.enqueue("openai", Reply(tokens=tokens, prompt_tokens=3, delay=0.01))
    async with httpx.AsyncClient() as http:
        ours = await http.post(
            f"{server.base_url}/v1/chat/completions",
            json=body,
            headers={KEY_HEADER: f"Bearer {api_key}"},
        )
        fake_provider.enqueue("openai", Reply(tokens=tokens, prompt_tokens=3))
        theirs = await http.post(
            f"{fake_provider.openai_base_url}/chat/completions",
            json={**body, "model": "gpt-4o-mini"},
            headers={KEY_HEADER: "Bearer sk-test"},
        )
    assert ours.headers["content-type"].startswith("text/event-stream")
    assert _normalised(_chunks(ours.text)) == _normalised(_chunks(theirs.text))


async def test_a_client_that_leaves_cancels_the_upstream_call_within_a_second(
    server: LiveServer, api_key: str, fake_provider: FakeProviderServer, compat: Container
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=[f" t{i}" for i in range(400)], delay=0.02))
    body = {"model": "openai/gpt-4o-mini", "messages": HELLO, "stream": True}
    async with (
        httpx.AsyncClient() as http,
        http.stream(
            "POST",
            f"{server.base_url}/v1/chat/completions",
            json=body,
            headers={KEY_HEADER: f"Bearer {api_key}"},
        ) as response,
    ):
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen += 1
                if seen == 6:
                    break
    left = time.monotonic()
    for _ in range(100):
        if fake_provider.disconnects:
            break
        await asyncio.sleep(0.01)
    assert fake_provider.disconnects, "the upstream call was not cancelled"
    assert fake_provider.disconnects[0] - left < 1.0
    for _ in range(100):  # the tokens already delivered are counted
        metrics = compat.metrics.render().decode()
        if 'symposia_tokens_streamed_total{model="gpt-4o-mini",provider="openai"}' in metrics:
            break
        await asyncio.sleep(0.01)
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith('symposia_tokens_streamed_total{model="gpt-4o-mini"')
    )
    assert float(line.split()[-1]) >= 5


async def test_conversation_header_keeps_the_exchange(
    server: LiveServer, api_key: str, compat: Container
) -> None:
    headers = {KEY_HEADER: f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        created = await http.post(
            "/api/v1/chat/completions",
            json={"model": "scripted/echo", "messages": HELLO},
            headers={"X-Symposia-Conversation": "new"},
        )
        assert created.status_code == 200
        conversation_id = created.headers["x-symposia-conversation"]
        followed = await http.post(
            "/v1/chat/completions",
            json={
                "model": "scripted/echo",
                "stream": True,
                "messages": [
                    *HELLO,
                    {"role": "assistant", "content": "You said: hello world"},
                    {"role": "user", "content": "again"},
                ],
            },
            headers={"X-Symposia-Conversation": conversation_id},
        )
        assert followed.status_code == 200
        items = (await http.get(f"/api/conversations/{conversation_id}/messages")).json()
        assert [(m["role"], m["content"]) for m in items["items"]] == [
            ("user", "hello world"),
            ("assistant", "You said: hello world"),
            ("user", "again"),
            ("assistant", "You said: again"),
        ]
        _, other_key = await compat.api_keys.create("other")
        stranger = await http.post(
            "/v1/chat/completions",
            json={"model": "scripted/echo", "messages": HELLO},
            headers={"X-Symposia-Conversation": conversation_id, KEY_HEADER: f"Bearer {other_key}"},
        )
        assert stranger.status_code == 404
        assert stranger.json()["error"]["type"] == "invalid_request_error"


async def test_scripted_stall_then_disconnect_frees_the_model(
    server: LiveServer, api_key: str, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["first", "never"], stall_after=1))
    body = {"model": "scripted/stall", "messages": HELLO, "stream": True}
    async with (
        httpx.AsyncClient(timeout=5) as http,
        http.stream(
            "POST",
            f"{server.base_url}/v1/chat/completions",
            json=body,
            headers={KEY_HEADER: f"Bearer {api_key}"},
        ) as response,
    ):
        async for line in response.aiter_lines():
            if '"first"' in line:
                break
        assert scripted.streaming == 1  # the model is stalled, still generating
    left = time.monotonic()
    for _ in range(200):
        if not scripted.streaming:
            break
        await asyncio.sleep(0.01)
    assert scripted.streaming == 0, "the model kept generating after its client left"
    assert time.monotonic() - left < 1
    assert len(scripted.requests) == 1  # and it was not called again


async def test_a_client_that_stops_reading_is_dropped_and_the_partial_reply_kept(
    server: LiveServer, api_key: str, compat: Container, scripted: ScriptedProvider
) -> None:
    """Each send is bounded by SSE_SEND_TIMEOUT: a stalled reader cannot hold the relay."""
    compat.settings.sse_send_timeout = 0.5
    scripted.add_script("flood", Script(chunks=["x" * 60_000] * 200, delay=0.001))
    body = json.dumps({"model": "scripted/flood", "messages": HELLO, "stream": True}).encode()
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/json\r\n"
        f"Authorization: Bearer {api_key}\r\nX-Symposia-Conversation: new\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(request)  # and never read the answer
    headers = {KEY_HEADER: f"Bearer {api_key}"}
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
            replies: list[dict[str, Any]] = []
            for _ in range(500):
                listed = (await http.get("/api/conversations")).json()["items"]
                if listed:
                    path = f"/api/conversations/{listed[0]['id']}/messages"
                    items = (await http.get(path)).json()["items"]
                    replies = [m for m in items if m["role"] == "assistant"]
                    if replies:
                        break
                await asyncio.sleep(0.02)
    finally:
        sock.close()
    assert replies, "the relay still holds the stalled client"
    assert replies[0]["status"] == "partial"
    assert 0 < len(replies[0]["content"]) < 60_000 * 200


async def test_chunks_made_together_leave_as_one_write(
    compat: Container, scripted: ScriptedProvider
) -> None:
    """The role chunk goes with the first text, and the finish, usage and [DONE] go
    together: every write costs a pass through the middleware and a system call."""
    scripted.add_script("abc", Script(chunks=["a", "b", "c"]))
    request = CompletionRequest("", [ChatMessage("user", "hi")])
    call = await compat.completions.prepare("scripted/abc", request, owner=None, conversation=None)
    started = await compat.completions.start(call)
    encoder = ChunkEncoder("chatcmpl-1", 1, "scripted/abc", include_usage=True)
    writes = [w async for w in encode_stream(started.first, started.rest, encoder, True)]

    def payloads(write: bytes) -> list[Any]:
        events = write.decode().removesuffix("\n\n").split("\n\n")
        return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]

    assert len(writes) == 4
    first, *middle, last = (payloads(write) for write in writes)
    assert [chunk["choices"][0]["delta"] for chunk in first] == [
        {"role": "assistant", "content": ""},
        {"content": "a"},
    ]
    assert [chunk["choices"][0]["delta"]["content"] for [chunk] in middle] == ["b", "c"]
    finish, usage, done = last
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] >= 1
    assert done == "[DONE]"

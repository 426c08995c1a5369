"""The OpenAI wire format over aiohttp directly: what the SDK used to do for the adapter
(pooled connections, base URL, headers, error mapping) and what only a direct path meets
(no SDK in the server's hot path)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from symposia.errors import ProviderError
from symposia.providers.base import ChatMessage, CompletionRequest, TextDelta
from symposia.providers.config import ProviderConfig
from symposia.providers.http_client import ProviderHttp, transport_failure
from symposia.providers.openai_adapter import OpenAIAdapter
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from tests.fakes.live import free_port
from tests.fakes.provider_server import FakeProviderServer, Reply

REQUEST = CompletionRequest("gpt-4o-mini", [ChatMessage("user", "hi")], max_tokens=10)


@pytest.fixture
async def adapter(fake_provider: FakeProviderServer) -> AsyncIterator[OpenAIAdapter]:
    config = ProviderConfig(
        "openai", "sk-direct", "OPENAI_API_KEY", fake_provider.openai_base_url, {"X-Extra": "1"}
    )
    adapter = OpenAIAdapter(config)
    yield adapter
    await adapter.close()


async def _text(adapter: OpenAIAdapter) -> str:
    return "".join([d.text async for d in adapter.stream(REQUEST) if isinstance(d, TextDelta)])


async def test_requests_reuse_one_pooled_connection(
    adapter: OpenAIAdapter, fake_provider: FakeProviderServer
) -> None:
    fake_provider.keep_alive = True
    for _ in range(3):
        assert await _text(adapter) == "Hello, world!"
    assert await adapter.models() == sorted(fake_provider.openai_models)
    assert fake_provider.connections == 1


async def test_a_closed_adapter_opens_a_new_session_when_used_again(
    adapter: OpenAIAdapter, fake_provider: FakeProviderServer
) -> None:
    assert await _text(adapter) == "Hello, world!"
    first = adapter.http.session
    await adapter.close()
    assert first.closed
    assert await _text(adapter) == "Hello, world!"
    assert adapter.http.session is not first


async def test_headers_and_body_are_those_the_sdk_sent(
    adapter: OpenAIAdapter, fake_provider: FakeProviderServer
) -> None:
    await _text(adapter)
    (sent,) = fake_provider.requests_to("openai")
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-direct"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-extra"] == "1"
    assert sent.headers["user-agent"].startswith("Symposia/")
    assert not any(name.startswith("x-stainless") for name in sent.headers)
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [{"role": "user", "content": "hi"}]
    assert sent.body["max_tokens"] == 10
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}


def test_the_base_url_keeps_its_path_and_query() -> None:
    http = ProviderHttp("https://gw.example.test/openai/v1/?api-version=2", None, {})
    url = http.url("/chat/completions")
    assert str(url) == "https://gw.example.test/openai/v1/chat/completions?api-version=2"
    assert str(ProviderHttp(None, None, {}).url("/models")) == ("https://api.openai.com/v1/models")


async def test_connection_refused_is_a_retried_connection_error() -> None:
    port = free_port()  # nothing listens there
    config = ProviderConfig("openai", "sk", "OPENAI_API_KEY", f"http://127.0.0.1:{port}/v1")
    adapter = OpenAIAdapter(config)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    call = ModelCall(
        ProviderRegistry([adapter]),
        RetryPolicy(3, 0.01, jitter=0),
        Timeouts(5, 5),
        ["openai/gpt-4o-mini"],
        REQUEST,
        sleep=sleep,
    )
    try:
        with pytest.raises(ProviderError) as info:
            async for _ in call:
                pass
    finally:
        await adapter.close()
    assert info.value.failure.code == "connection_error"
    assert [f.code for f in call.attempts] == ["connection_error"] * 3
    assert len(sleeps) == 2


async def test_a_non_json_error_page_keeps_its_status_and_text() -> None:
    """A proxy in front of the upstream answers HTML: the status decides, the text says."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        page = b"<html>502 Bad Gateway</html>"
        writer.write(
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\nretry-after: 7\r\n"
            b"content-length: " + str(len(page)).encode() + b"\r\n\r\n" + page
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = ProviderConfig("openai", "sk", "OPENAI_API_KEY", f"http://127.0.0.1:{port}/v1")
    adapter = OpenAIAdapter(config)
    try:
        with pytest.raises(ProviderError) as info:
            await _text(adapter)
    finally:
        await adapter.close()
        server.close()
        await server.wait_closed()
    failure = info.value.failure
    assert (failure.code, failure.status, failure.retry_after) == ("provider_unavailable", 502, 7)
    assert "502 Bad Gateway" in failure.message


async def test_a_json_error_answer_gives_its_message(
    adapter: OpenAIAdapter, fake_provider: FakeProviderServer
) -> None:
    body = {"error": {"message": "quota exceeded", "type": "insufficient_quota"}}
    fake_provider.enqueue("openai", Reply(status=429, error_body=body))
    with pytest.raises(ProviderError) as info:
        await _text(adapter)
    assert info.value.failure.code == "rate_limited"
    assert "quota exceeded" in info.value.failure.message


async def test_a_failed_model_listing_is_a_provider_error(
    fake_provider: FakeProviderServer,
) -> None:
    config = ProviderConfig("openai", "sk", "OPENAI_API_KEY", f"http://127.0.0.1:{free_port()}/v1")
    adapter = OpenAIAdapter(config)
    try:
        with pytest.raises(ProviderError) as info:
            await adapter.models()
    finally:
        await adapter.close()
    assert info.value.failure.code == "connection_error"


@pytest.mark.parametrize(
    ("exc", "answering", "code"),
    [
        (TimeoutError(), False, "timeout"),
        (TimeoutError(), True, "timeout"),
        (ConnectionResetError("reset"), False, "connection_error"),
        (ConnectionResetError("reset"), True, "stream_error"),
    ],
)
def test_transport_faults_before_and_after_the_answer_began(
    exc: BaseException, answering: bool, code: str
) -> None:
    failure = transport_failure(exc, "openai", "m", answering=answering)
    assert failure.code == code
    assert failure.retryable


def test_the_adapter_does_not_import_the_openai_sdk() -> None:
    """The SDK stays a client of the tests: a call to OpenAI does not load it."""
    code = f"""
import asyncio, sys
from symposia.providers.config import ProviderConfig
from symposia.providers.openai_adapter import OpenAIAdapter
from tests.providers.test_openai_http import REQUEST

async def call() -> None:
    adapter = OpenAIAdapter(ProviderConfig("o", "k", "K", "http://127.0.0.1:{free_port()}/v1"))
    try:
        async for _ in adapter.stream(REQUEST):
            pass
    except Exception as exc:
        print(type(exc).__name__)
    await adapter.close()

asyncio.run(call())
print("openai" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],  # where `tests` is importable
    ).stdout
    assert out.split() == ["ProviderError", "False"]


async def test_a_request_costs_no_thread_hop(
    adapter: OpenAIAdapter, fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp's `trust_env` looks up the proxy and `.netrc` in a worker thread on every
    request; the GIL hand-overs cost more than the request. The proxy is looked up once."""
    loop = asyncio.get_running_loop()
    hops: list[object] = []
    original = loop.run_in_executor

    def recording(executor: object, func: object, *args: object) -> asyncio.Future[object]:
        hops.append(func)
        return original(executor, func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "run_in_executor", recording)
    for _ in range(2):
        assert await _text(adapter) == "Hello, world!"
    assert hops == []


async def test_the_proxy_of_the_environment_is_used(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY and NO_PROXY are honoured, as the SDK honoured them."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{fake_provider.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    config = ProviderConfig("openai", "sk", "OPENAI_API_KEY", "http://upstream.invalid/v1")
    adapter = OpenAIAdapter(config)
    try:
        with pytest.raises(ProviderError):
            await _text(adapter)  # the fake is no proxy: it answers 404 to the full URL
    finally:
        await adapter.close()
    (sent,) = fake_provider.requests
    assert sent.path == "http://upstream.invalid/v1/chat/completions"


@pytest.mark.parametrize("body", [b"[]", b'{"object": "list"}', b"not json"])
async def test_a_malformed_model_list_is_a_provider_error(body: bytes) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        writer.write(head + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = OpenAIAdapter(ProviderConfig("o", "sk", "K", f"http://127.0.0.1:{port}/v1"))
    try:
        with pytest.raises(ProviderError) as info:
            await adapter.models()
    finally:
        await adapter.close()
        server.close()
        await server.wait_closed()
    assert info.value.failure.code == "stream_error"


async def test_text_that_arrived_before_a_cut_is_kept_while_the_consumer_was_busy(
    adapter: OpenAIAdapter, fake_provider: FakeProviderServer
) -> None:
    """aiohttp raises a stream's failure ahead of the data it still holds: the adapter
    takes that data first (`body_reads`), so what arrived while the relay was busy
    sending is not lost to the cut that followed it."""
    fake_provider.enqueue(
        "openai", Reply(tokens=["one", " two", " three"], cut_after=2, delay=0.05)
    )
    received: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for delta in adapter.stream(REQUEST):
            if isinstance(delta, TextDelta):
                received.append(delta.text)
                await asyncio.sleep(0.3)  # a slow client: " two" and the cut arrive meanwhile
    assert "".join(received) == "one two"
    assert info.value.failure.code == "stream_error"

"""A `/v1` request ends when its client leaves or the server stops (issue 10, points 3
and 4): the upstream call is cancelled at once, whatever the phase (before the first
token, in a retry's wait, streamed or not).

The client is a raw socket that sends its request and closes; the fake provider server
says when the upstream connection closed and how many attempts reached it. Shutdown of
a whole `symposia serve` process is in test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from symposia.container import Container
from symposia.settings import Settings
from tests.conftest import remote_settings
from tests.fakes.live import LiveServer
from tests.fakes.provider_server import FakeProviderServer, Reply

FIRST_TOKEN_TIMEOUT = 2.0
RETRY_AFTER = 2  # seconds the upstream asks to wait before the next attempt
PROMPT = [{"role": "user", "content": "hello"}]


@pytest.fixture
def settings(fake_provider: FakeProviderServer, tmp_path: Path) -> Settings:
    """Cancellation involves no storage: the SQLite default is enough."""
    return remote_settings(
        fake_provider,
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
        llm_timeout=FIRST_TOKEN_TIMEOUT,
    )


async def _ask_and_leave(
    live: LiveServer, fake: FakeProviderServer, *, stream: bool, stay: float
) -> float:
    """Send a completion request, stay `stay` seconds after it reached the upstream, then
    close the socket; returns when the client left (time.monotonic())."""
    body = json.dumps({"model": "openai/gpt-4o-mini", "messages": PROMPT, "stream": stream})
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    writer.write(
        (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    await writer.drain()
    for _ in range(200):
        if fake.requests_to("openai"):
            break
        await asyncio.sleep(0.01)
    assert fake.requests_to("openai"), "the request never reached the upstream"
    await asyncio.sleep(stay)
    assert not await _has_data(reader), "the server answered before the client left"
    writer.close()
    left = time.monotonic()
    await writer.wait_closed()
    return left


async def _has_data(reader: asyncio.StreamReader) -> bool:
    try:
        return bool(await asyncio.wait_for(reader.read(1), 0.01))
    except TimeoutError:
        return False


async def _upstream_closed(fake: FakeProviderServer, within: float) -> float | None:
    for _ in range(round(within / 0.01)):
        if fake.disconnects:
            break
        await asyncio.sleep(0.01)
    return fake.disconnects[0] if fake.disconnects else None


async def _request_ended(container: Container) -> None:
    for _ in range(100):
        if container.request_scopes.count == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the request is still being handled after its client left")


async def test_leaving_before_the_first_token_closes_the_silent_upstream(
    live: LiveServer, fake_provider: FakeProviderServer, container: Container
) -> None:
    fake_provider.enqueue("openai", *[Reply(hang=True)] * 3)
    left = await _ask_and_leave(live, fake_provider, stream=True, stay=0.2)
    closed = await _upstream_closed(fake_provider, within=FIRST_TOKEN_TIMEOUT + 0.5)
    assert closed is not None, "the upstream call was not closed"
    assert closed - left < 0.5
    await _request_ended(container)
    await asyncio.sleep(FIRST_TOKEN_TIMEOUT)  # past when a timeout would have retried
    assert len(fake_provider.requests_to("openai")) == 1, "retried after the client left"


async def test_leaving_during_a_retry_wait_sends_no_further_attempt(
    live: LiveServer, fake_provider: FakeProviderServer, container: Container
) -> None:
    limited = Reply(status=429, headers={"Retry-After": str(RETRY_AFTER)})
    fake_provider.enqueue("openai", *[limited] * 3)
    await _ask_and_leave(live, fake_provider, stream=True, stay=0.3)
    first = fake_provider.requests_to("openai")[0].at
    await asyncio.sleep(max(0.0, first + RETRY_AFTER + 0.5 - time.monotonic()))
    assert len(fake_provider.requests_to("openai")) == 1, "retried after the client left"
    await _request_ended(container)


async def test_leaving_a_request_that_is_not_streamed_closes_the_upstream(
    live: LiveServer, fake_provider: FakeProviderServer, container: Container
) -> None:
    slow = Reply(tokens=[f" t{i}" for i in range(60)], delay=0.05)  # 3 s of streaming
    fake_provider.enqueue("openai", slow)
    left = await _ask_and_leave(live, fake_provider, stream=False, stay=0.3)
    closed = await _upstream_closed(fake_provider, within=4)
    assert closed is not None, "the upstream streamed on to its end"
    assert closed - left < 0.5
    await _request_ended(container)


async def test_shutdown_answers_a_request_still_waiting_for_its_first_token_with_503(
    live: LiveServer, fake_provider: FakeProviderServer, container: Container
) -> None:
    fake_provider.enqueue("openai", Reply(hang=True))
    body = {"model": "openai/gpt-4o-mini", "messages": PROMPT, "stream": True}
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        asked = asyncio.create_task(http.post("/v1/chat/completions", json=body))
        for _ in range(300):
            if fake_provider.requests_to("openai"):
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await container.request_scopes.shutdown(grace=2)
        answer = await asked
        ended_after = time.monotonic() - started
        late = await http.post("/v1/chat/completions", json=body)
    assert ended_after < 1
    assert answer.status_code == 503
    assert answer.json()["error"] == {
        "message": "the server is shutting down",
        "type": "server_error",
        "param": None,
        "code": "server_shutdown",
    }
    assert fake_provider.disconnects, "the upstream call was not closed"
    assert late.status_code == 503  # a request arriving during shutdown is not started
    assert len(fake_provider.requests_to("openai")) == 1


async def test_shutdown_ends_a_responses_stream_with_response_failed(
    live: LiveServer, fake_provider: FakeProviderServer, container: Container
) -> None:
    """A `/v1/responses` stream cut by shutdown ends as that protocol ends a failure: a
    `response.failed` event numbered after the last one, not a chat-completions chunk."""
    fake_provider.enqueue("openai", Reply(tokens=[f" t{i}" for i in range(60)], delay=0.05))
    body = {"model": "openai/gpt-4o-mini", "input": "hello", "stream": True}
    events: list[dict[str, object]] = []
    async with (
        httpx.AsyncClient(base_url=live.base_url, timeout=10) as http,
        http.stream("POST", "/v1/responses", json=body) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if events[-1]["type"] == "response.output_text.delta" and len(events) == 6:
                    await container.request_scopes.shutdown(grace=2)
    last = events[-1]
    assert last["type"] == "response.failed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    failed = last["response"]
    assert isinstance(failed, dict)
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "server_error",
        "message": "server_shutdown: the server is shutting down",
    }
    assert fake_provider.disconnects, "the upstream call was not closed"

"""The fault catalogue: every provider fault, through every adapter and every surface.

Each fault is a row of data (what the fake provider server answers, and what the client
and storage must then see); each adapter and each surface is a row too. The suite is
their product, so a new provider or surface joins by adding one row. Everything goes
through the real app (ASGI), the real adapters and SDKs, and the fake server on
loopback. Timeouts and backoff are small so the whole catalogue runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from symposia.app import container_of, create_app
from symposia.container import default_providers
from symposia.settings import Settings
from tests import sse
from tests.conftest import remote_settings
from tests.fakes import provider_server
from tests.fakes.provider_server import FakeProviderServer, Reply

# Small, so stalls cost little; not so small that a loaded machine trips them.
FIRST_TOKEN_TIMEOUT = 0.8
IDLE_TIMEOUT = 0.4
# A row expected "at once" answers within this, though the provider asked for an hour.
AT_ONCE_SECONDS = 1.0
# Any row: the answer comes within this, or the case fails (a silent wait is a failure).
CASE_TIMEOUT = 8.0
OVERLOADED = {"type": "overloaded_error", "message": "Overloaded"}
PROMPT = "Tabs or spaces?"
# boto3 finds these in the environment; the access key id is sent in every request's
# Authorization header (SigV4), so an upstream may echo it.
AWS_ACCESS_KEY_ID = "AKIATESTCANARY000001"
AWS_SECRET_ACCESS_KEY = "aws-secret-canary-0123456789"


@dataclass(frozen=True)
class Adapter:
    """A provider as the catalogue drives it: the model named, the fake route it calls."""

    name: str
    model: str
    route: str


ADAPTERS = [
    Adapter("openai", "openai/gpt-4o-mini", "openai"),
    Adapter("openrouter", "openrouter/gpt-4o-mini", "openai"),  # an OpenAI-compatible server
    Adapter("anthropic", "anthropic/claude-haiku-4-5", "anthropic"),
    Adapter("bedrock", "bedrock/anthropic.claude-3-haiku-20240307-v1:0", "bedrock"),
]
NO_RETRY_AFTER = "Bedrock sends no Retry-After: its 429 backs off (429_without_retry_after)"
# Bedrock's overload is a 503 serviceUnavailableException, not Anthropic's overloaded_error.
BEDROCK_UNAVAILABLE: Mapping[str, Any] = {
    "error": "provider_unavailable",
    "v1_code": "provider_unavailable",
}


@dataclass(frozen=True)
class Fault:
    """One row: the replies queued, and what every surface must then show.

    `text` is what the client receives and what is stored (with `stored_status`);
    `error` the failure code the client is told (None: the call succeeds); `v1_status`
    the HTTP status `/v1` answers a failure with before any text (and a non-streaming
    `/v1` whatever the text); `v1_code` the code it names there (None: not checked).
    `not_applicable` names the adapters the fault cannot happen to, and why; `expect`
    what an adapter shows differently (its provider names the fault its own way).
    """

    name: str
    replies: tuple[Reply, ...]
    text: str = "Hello, world!"
    error: str | None = None
    requests: int = 1
    v1_status: int = 200
    v1_code: str | None = None
    retry_after: float | None = None
    at_once: bool = False
    min_seconds: float = 0.0
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    expect: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def on(self, adapter: str) -> Fault:
        """The row as `adapter` shows it."""
        return replace(self, **self.expect.get(adapter, {}))

    @property
    def stored_status(self) -> str:
        return "partial" if self.error else "complete"


FAULTS = [
    Fault(
        "429_retry_after_then_ok",
        (Reply(status=429, headers={"Retry-After": "0.2"}), Reply()),
        requests=2,
        min_seconds=0.2,  # the Retry-After was waited out
        not_applicable={"bedrock": NO_RETRY_AFTER},
    ),
    Fault("429_without_retry_after_backs_off_then_ok", (Reply(status=429), Reply()), requests=2),
    Fault(
        "429_huge_retry_after_fails_at_once",
        (Reply(status=429, headers={"Retry-After": "3600"}),),
        text="",
        error="rate_limited",
        v1_status=429,
        v1_code="rate_limited",
        retry_after=3600.0,
        at_once=True,
        not_applicable={"bedrock": NO_RETRY_AFTER},
    ),
    Fault("5xx_retried_then_ok", (Reply(status=503), Reply()), requests=2),
    Fault(
        "5xx_every_attempt",
        (Reply(status=500),) * 3,
        text="",
        error="provider_unavailable",
        requests=3,
        v1_status=502,
        v1_code="provider_unavailable",
    ),
    Fault(
        "529_overloaded_retried",
        (Reply(status=529), Reply()),
        requests=2,
        not_applicable={
            "openai": "529 is Anthropic's own status",
            "openrouter": "529 is Anthropic's own status",
            "bedrock": "529 is Anthropic's own status; Bedrock's overload is a 503",
        },
    ),
    Fault(
        "400_never_retried",
        (Reply(status=400), Reply()),
        text="",
        error="bad_request",
        v1_status=400,
        v1_code="bad_request",
    ),
    Fault(
        # Our key refused upstream is the server's problem: a 502 on /v1 (its code is the
        # edge's to name).
        "401_never_retried",
        (Reply(status=401), Reply()),
        text="",
        error="invalid_api_key",
        v1_status=502,
    ),
    Fault(
        "cut_after_tokens_keeps_the_partial",
        (Reply(cut_after=2), Reply()),
        text="Hello,",
        error="stream_error",
        v1_status=502,
        v1_code="stream_error",
    ),
    Fault(
        "stall_before_first_token_times_out_and_retries",
        (Reply(stall_after=0), Reply()),
        requests=2,
        min_seconds=FIRST_TOKEN_TIMEOUT,
    ),
    Fault(
        "stall_mid_stream_idle_timeout_keeps_the_partial",
        (Reply(stall_after=2), Reply()),
        text="Hello,",
        error="timeout",
        v1_status=504,
        v1_code="timeout",
        min_seconds=IDLE_TIMEOUT,
    ),
    Fault(
        "split_utf8_is_byte_exact",
        # One token event, written a byte at a time: the first-token limit covers it all.
        (Reply(tokens=["é€😀 ok"], split_utf8=True),),
        text="é€😀 ok",
    ),
    Fault(
        "text_and_error_in_one_read_keeps_the_text",
        (Reply(tokens=["Half", " a", " thought"], error_event=OVERLOADED, error_after=2), Reply()),
        text="Half a",
        error="overloaded",
        v1_status=502,
        v1_code="overloaded",
        expect={"bedrock": BEDROCK_UNAVAILABLE},
    ),
    Fault(
        "key_echoed_by_a_401_is_redacted",
        (Reply(status=401, echo_key=True),),
        text="",
        error="invalid_api_key",
        v1_status=502,
    ),
    Fault(
        "key_echoed_in_stream_after_text_is_redacted",
        (Reply(error_event=OVERLOADED, error_after=1, echo_key=True),),
        text="Hello",
        error="overloaded",
        v1_status=502,
        v1_code="overloaded",
        expect={"bedrock": BEDROCK_UNAVAILABLE},
    ),
]


@dataclass
class Seen:
    """What one surface showed: to the client, and in storage."""

    status: int
    text: str
    error: dict[str, Any] | None  # the failure as the surface shapes it
    headers: httpx.Headers
    raw: str  # everything the client and storage hold, for the secret check
    stored: list[tuple[str, str]] | None = None  # (content, status); None: not stored here
    extra: dict[str, Any] = field(default_factory=dict)


async def _events(response: httpx.Response) -> list[sse.Frame]:
    assert response.status_code == 200, await response.aread()
    return [frame async for frame in sse.frames(response) if frame.comment is None]


def _from_events(frames: list[sse.Frame]) -> tuple[str, dict[str, Any] | None]:
    text = "".join(f.data["delta"] for f in frames if f.event == "token")
    error = next((f.data for f in frames if f.event == "error"), None)
    return text, error


async def run_surface(api: httpx.AsyncClient, model: str) -> Seen:
    """`POST /api/run`, then `/api/stream/{id}` to its end; the stored run and messages."""
    bots = [{"name": "Ada", "model": model}, {"name": "Bert", "model": "scripted/echo"}]
    created = await api.post("/api/run", json={"topic": PROMPT, "bots": bots, "max_turns": 1})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    async with api.stream("GET", f"/api/stream/{run_id}") as response:
        frames = await _events(response)
    text, error = _from_events(frames)
    run = (await api.get(f"/api/run/{run_id}")).json()
    export = (await api.get(f"/api/export/{run_id}.json")).json()
    assert run["error"] == error  # the stored failure is the one the stream told
    stored = [(m["content"], m["status"]) for m in export["messages"]]
    raw = json.dumps([f.data for f in frames]) + json.dumps(run) + json.dumps(export)
    return Seen(200, text, error, response.headers, raw, stored)


async def chat_surface(api: httpx.AsyncClient, model: str) -> Seen:
    """`POST /api/chat/stream` to its end; the conversation's stored reply."""
    body = {"message": PROMPT, "model": model}
    async with api.stream("POST", "/api/chat/stream", json=body) as response:
        frames = await _events(response)
    text, error = _from_events(frames)
    done = next(f.data for f in frames if f.event == "done")
    listing = (await api.get(f"/api/conversations/{done['conversation_id']}/messages")).json()
    replies = [m for m in listing["items"] if m["role"] == "assistant"]
    stored = [(m["content"], m["status"]) for m in replies]
    raw = json.dumps([f.data for f in frames]) + json.dumps(listing)
    return Seen(200, text, error, response.headers, raw, stored)


def _v1_body(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}


async def v1_stream_surface(api: httpx.AsyncClient, model: str) -> Seen:
    """`POST /v1/chat/completions` streaming: chunks, then `[DONE]` or a final error chunk;
    an error before any text is an HTTP error."""
    async with api.stream("POST", "/v1/chat/completions", json=_v1_body(model, True)) as response:
        raw = (await response.aread()).decode()
    if response.status_code != 200:
        return Seen(response.status_code, "", json.loads(raw)["error"], response.headers, raw)
    payloads = [line[len("data: ") :] for line in raw.splitlines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]" or "error" in json.loads(payloads[-1]), raw
    chunks = [json.loads(p) for p in payloads if p != "[DONE]"]
    text = "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices", ())
    )
    error = next((chunk["error"] for chunk in chunks if "error" in chunk), None)
    return Seen(200, text, error, response.headers, raw)


async def v1_surface(api: httpx.AsyncClient, model: str) -> Seen:
    """`POST /v1/chat/completions` not streaming: one `chat.completion`, or an HTTP error."""
    response = await api.post("/v1/chat/completions", json=_v1_body(model, False))
    body = response.json()
    if response.status_code != 200:
        return Seen(response.status_code, "", body["error"], response.headers, response.text)
    text = body["choices"][0]["message"]["content"]
    return Seen(200, text, None, response.headers, response.text)


Surface = Callable[[httpx.AsyncClient, str], Awaitable[Seen]]
SURFACES: dict[str, Surface] = {
    "runs": run_surface,
    "chat": chat_surface,
    "v1_stream": v1_stream_surface,
    "v1": v1_surface,
}
# Surfaces that tell a failure after text as an event, text kept; the others: HTTP errors.
EVENT_SURFACES = {"runs", "chat"}


def _check_events(fault: Fault, seen: Seen, surface: str) -> None:
    """Runs and chat: the text as token events, the failure as an `error` event (with
    `retry_after`), the text stored, partial when the call failed. A run's turn is stored
    even when it failed before its first word: it was claimed (its model asked), its
    number is taken, and it is never asked again."""
    assert seen.text == fault.text
    if fault.text:
        assert seen.stored == [(fault.text, fault.stored_status)]
    elif surface == "runs" and fault.error is not None:
        assert seen.stored == [("", "partial")]
    else:
        assert seen.stored == []
    if fault.error is None:
        assert seen.error is None
        return
    assert seen.error is not None
    assert seen.error["code"] == fault.error
    assert seen.error["retry_after"] == fault.retry_after


def _check_v1(fault: Fault, seen: Seen, streaming: bool) -> None:
    """`/v1`: OpenAI's shapes. Streaming, text already sent is kept and a final error chunk
    follows; a failure before text (or any failure, not streaming) is an HTTP error."""
    if fault.error is None:
        assert (seen.status, seen.text, seen.error) == (200, fault.text, None)
        return
    assert seen.error is not None
    if streaming and fault.text:
        assert (seen.status, seen.text) == (200, fault.text)
    else:
        assert (seen.status, seen.text) == (fault.v1_status, "")
    if fault.v1_code is not None:
        assert seen.error["code"] == fault.v1_code
    if fault.retry_after is not None:
        assert seen.headers["retry-after"] == str(round(fault.retry_after))


def _cases() -> list[Any]:
    return [
        pytest.param(
            fault.on(adapter.name), adapter, surface, id=f"{fault.name}-{adapter.name}-{surface}"
        )
        for fault in FAULTS
        for adapter in ADAPTERS
        if adapter.name not in fault.not_applicable
        for surface in SURFACES
    ]


@dataclass
class Catalogue:
    """One fake provider and one app for the whole module: building an app per case
    (migrations, SDK clients) would cost more than the faults themselves."""

    fake: FakeProviderServer
    settings: Settings
    api: httpx.AsyncClient


@contextlib.contextmanager
def _aws_credentials() -> Iterator[None]:
    """Test credentials where boto3 looks first, for the module's shared app."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID)
        patch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalogue(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Catalogue]:
    database = tmp_path_factory.mktemp("catalogue") / "symposia.db"
    with _aws_credentials():
        async with FakeProviderServer() as fake:
            settings = remote_settings(
                fake,
                aws_region="us-east-1",
                bedrock_endpoint_url=fake.bedrock_endpoint_url,
                database_url=f"sqlite:///{database}",
                llm_timeout=FIRST_TOKEN_TIMEOUT,
                llm_idle_timeout=IDLE_TIMEOUT,
                llm_retry_base_seconds=0.01,
                llm_max_attempts=3,
                retry_after_max_seconds=5,
            )
            application = create_app(settings, default_providers(settings))
            await container_of(application).start()
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://symposia.test"
            ) as api:
                yield Catalogue(fake, settings, api)
            await container_of(application).shutdown()
            assert fake.handler_errors == []


@pytest.fixture
def fake(catalogue: Catalogue) -> FakeProviderServer:
    """The shared fake, as if new: no request seen, nothing queued."""
    catalogue.fake.clear()
    return catalogue.fake


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("fault", "adapter", "surface"), _cases())
async def test_fault(
    fault: Fault,
    adapter: Adapter,
    surface: str,
    catalogue: Catalogue,
    fake: FakeProviderServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provider_server, "SPLIT_WRITE_PAUSE", 0.0005)
    caplog.set_level(logging.DEBUG)
    fake.enqueue(adapter.route, *fault.replies)
    started = time.monotonic()
    seen = await asyncio.wait_for(SURFACES[surface](catalogue.api, adapter.model), CASE_TIMEOUT)
    elapsed = time.monotonic() - started

    if surface in EVENT_SURFACES:
        _check_events(fault, seen, surface)
    else:
        _check_v1(fault, seen, streaming=surface == "v1_stream")
    assert len(fake.requests_to(adapter.route)) == fault.requests
    assert elapsed >= fault.min_seconds
    if fault.at_once:
        assert elapsed < AT_ONCE_SECONDS
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in [*catalogue.settings.secret_values(), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]:
        assert secret not in seen.raw
        assert secret not in logs

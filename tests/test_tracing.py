"""Issue 25, traces: OpenTelemetry spans read back from the SDK's in-memory exporter.

The span tree (HTTP server span → run → turn → chat, and the choices a supervisor
makes), the GenAI attributes, W3C `traceparent` from the client to the fake upstream
through every span, prompts and completions only when asked, and nothing at all when off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from symposia.app import container_of, create_app
from symposia.container import default_providers
from symposia.domain.models import Panel, PanelAgent
from symposia.observability import tracing
from symposia.orchestration.generation import Models
from symposia.orchestration.routing import route
from symposia.providers.base import ChatMessage, CompletionRequest
from symposia.providers.bedrock import BedrockAdapter
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from symposia.providers.scripted import Script, ScriptedProvider
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.helpers import eventually, wait_done
from tests.sse import chat

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
PROMPT = "What is the capital of France?"


def _exporter(environ: dict[str, str]) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, environ)
    try:
        yield exporter
    finally:
        tracing.reset()
        provider.shutdown()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from _exporter({})


@pytest.fixture
def spans_with_content() -> Iterator[InMemorySpanExporter]:
    yield from _exporter({tracing.CAPTURE_CONTENT: "true"})


async def _app(fake: FakeProviderServer, tmp_path: Path, scripted: ScriptedProvider) -> FastAPI:
    settings = remote_settings(fake, database_url=f"sqlite:///{tmp_path / 'traces.db'}")
    providers = default_providers(settings)
    providers.register(scripted)
    application = create_app(settings, providers)
    await container_of(application).start()
    return application


@pytest.fixture
async def client(
    fake_provider: FakeProviderServer, tmp_path: Path, scripted: ScriptedProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, created after the test's tracer provider is installed (or none is)."""
    application = await _app(fake_provider, tmp_path, scripted)
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            c.app = application  # type: ignore[attr-defined]
            yield c
    finally:
        await container_of(application).shutdown()


def _one(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def _named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def _chat(client: httpx.AsyncClient, model: str, **headers: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def test_a_v1_request_is_a_server_span_over_a_chat_span_and_its_traceparent_goes_upstream(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Par", "is"], prompt_tokens=7))
    await _chat(client, "openai/gpt-4o-mini", traceparent=TRACEPARENT)
    server = _one(spans, "POST /v1/chat/completions")
    chat = _one(spans, "chat gpt-4o-mini")
    # The client's trace goes on: the server span is its child, the chat span the server's.
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert format(_parent_id(server) or 0, "016x") == CLIENT_SPAN
    assert server.kind is SpanKind.SERVER
    assert server.attributes is not None
    assert server.attributes["http.route"] == ("/v1/chat/completions")
    assert server.attributes["http.response.status_code"] == 200
    assert chat.kind is SpanKind.CLIENT
    assert chat.context.trace_id == server.context.trace_id
    assert _parent_id(chat) == server.context.span_id
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (
        7,
        2,
    )
    ttft = attributes["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttft, float)
    assert 0 < ttft < (chat.end_time - chat.start_time) / 1e9
    assert [e.name for e in chat.events] == ["gen_ai.first_chunk"]
    assert attributes["server.address"] == "127.0.0.1"
    # The upstream was told the chat span is its parent, in the client's trace.
    (sent,) = fake_provider.requests_to("openai")
    assert sent.headers["traceparent"] == (
        f"00-{TRACE_ID}-{format(chat.context.span_id, '016x')}-01"
    )
    # No prompt nor completion on any span unless asked.
    for span in spans.get_finished_spans():
        assert PROMPT not in json.dumps(dict(span.attributes or {}))
        assert "gen_ai.input.messages" not in (span.attributes or {})


async def test_anthropic_calls_carry_the_traceparent_and_their_own_names(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("anthropic", Reply(tokens=["Hi"], prompt_tokens=4))
    await _chat(client, "anthropic/claude-haiku-4-5")
    chat = _one(spans, "chat claude-haiku-4-5")
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.response.model"] == "claude-haiku-4-5"
    assert attributes["gen_ai.usage.input_tokens"] == 4
    (sent,) = fake_provider.requests_to("anthropic")
    trace_id, span_id = format(chat.context.trace_id, "032x"), format(chat.context.span_id, "016x")
    assert sent.headers["traceparent"].split("-")[1:3] == [trace_id, span_id]


async def test_a_failed_attempt_is_its_own_span_with_the_failure_code(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(status=503), Reply(tokens=["ok"], prompt_tokens=2))
    await _chat(client, "openai/gpt-4o-mini")
    first, second = sorted(_named(spans, "chat "), key=lambda s: s.start_time or 0)
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "provider_unavailable"
    assert [(s.attributes or {})["symposia.attempt"] for s in (first, second)] == [1, 2]
    assert second.status.status_code is StatusCode.UNSET
    assert first.parent == second.parent  # both children of the request
    # Each attempt told the upstream its own span.
    sent = fake_provider.requests_to("openai")
    assert [r.headers["traceparent"].split("-")[2] for r in sent] == [
        format(s.context.span_id, "016x") for s in (first, second)
    ]


async def test_prompts_and_completions_are_recorded_only_when_asked(
    spans_with_content: InMemorySpanExporter,
    client: httpx.AsyncClient,
    fake_provider: FakeProviderServer,
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Par", "is"], prompt_tokens=7))
    await _chat(client, "openai/gpt-4o-mini")
    attributes = dict(_one(spans_with_content, "chat gpt-4o-mini").attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Paris"}],
            "finish_reason": "stop",
        }
    ]


async def test_a_run_is_a_workflow_span_with_a_span_per_turn_and_a_chat_span_in_each(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("a", Script(chunks=["one ", "two"]))
    bots = [
        {"name": "Ada", "model": "scripted/a"},
        {"name": "Bert", "model": "scripted/a"},
    ]
    created = await client.post(
        "/api/run",
        json={"topic": "tea", "bots": bots, "max_turns": 2},
        headers={"traceparent": TRACEPARENT},
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    await wait_done(container_of(client.app), run_id)  # type: ignore[attr-defined]
    await eventually(lambda: _named(spans, "invoke_workflow"), within=5)
    (workflow,) = _named(spans, "invoke_workflow")
    request = _one(spans, "POST /api/run")
    assert workflow.name == "invoke_workflow round_robin"
    assert _parent_id(workflow) == request.context.span_id  # started by that request
    assert format(workflow.context.trace_id, "032x") == TRACE_ID
    attributes = dict(workflow.attributes or {})
    assert attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert attributes["gen_ai.conversation.id"] == run_id
    assert attributes["symposia.run.phase"] == "execute"
    turns = sorted(_named(spans, "invoke_agent"), key=lambda s: s.start_time or 0)
    assert [t.name for t in turns] == ["invoke_agent Ada", "invoke_agent Bert"]
    chats = _named(spans, "chat a")
    assert len(chats) == 2
    for index, turn in enumerate(turns):
        assert _parent_id(turn) == workflow.context.span_id
        assert (turn.attributes or {})["gen_ai.operation.name"] == "invoke_agent"
        assert (turn.attributes or {})["gen_ai.agent.id"] == str(index)
        assert (turn.attributes or {})["symposia.turn"] == index
        (chat,) = [c for c in chats if _parent_id(c) == turn.context.span_id]
        assert (chat.attributes or {})["gen_ai.provider.name"] == "scripted"


async def test_the_selectors_choice_is_a_span_over_its_supervisor_call(
    spans_with_content: InMemorySpanExporter,
    client: httpx.AsyncClient,
    scripted: ScriptedProvider,
) -> None:
    scripted.add_script("boss", Script(chunks=["Bert"]))
    scripted.add_script("a", Script(chunks=["hi"]))
    bots = [{"name": "Ada", "model": "scripted/a"}, {"name": "Bert", "model": "scripted/a"}]
    created = await client.post(
        "/api/run",
        json={
            "topic": "tea",
            "bots": bots,
            "max_turns": 1,
            "policy": "selector",
            "policy_config": {"model": "scripted/boss"},
        },
    )
    assert created.status_code == 201, created.text
    await wait_done(container_of(client.app), created.json()["id"])  # type: ignore[attr-defined]
    await eventually(lambda: _named(spans_with_content, "invoke_workflow"), within=5)
    (workflow,) = _named(spans_with_content, "invoke_workflow")
    choice = _one(spans_with_content, "select_speaker")
    assert _parent_id(choice) == workflow.context.span_id
    attributes = dict(choice.attributes or {})
    assert attributes["symposia.choice.agent"] == "Bert"
    assert (attributes["symposia.choice.attempts"], attributes["symposia.choice.fallback"]) == (
        1,
        False,
    )
    assert attributes["symposia.choice.answer"] == "Bert"  # content capture is on here
    (asked,) = _named(spans_with_content, "chat boss")
    assert _parent_id(asked) == choice.context.span_id
    assert _one(spans_with_content, "invoke_agent Bert").parent == workflow.context


async def test_a_panels_routing_is_a_span_over_its_supervisor_call(
    spans: InMemorySpanExporter, scripted: ScriptedProvider
) -> None:
    scripted.add_script("sup", Script(chunks=['{"agent": "billing", "reason": "money"}']))
    panel = Panel((PanelAgent("billing", "pays", "scripted/a"),))
    models = Models(ProviderRegistry([scripted]))
    routing = await route(models, "scripted/sup", panel, [], "my invoice")
    assert routing.agent == "billing"
    choice = _one(spans, "route_question")
    attributes = dict(choice.attributes or {})
    assert attributes["symposia.choice.agent"] == "billing"
    assert attributes["gen_ai.request.model"] == "scripted/sup"
    assert "symposia.choice.answer" not in attributes  # its reason is content: not captured
    assert _parent_id(_one(spans, "chat sup")) == choice.context.span_id


async def test_boto3_calls_carry_the_traceparent(
    spans: InMemorySpanExporter,
    fake_provider: FakeProviderServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTBEDROCK00001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-test-bedrock")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    adapter = BedrockAdapter("us-east-1", endpoint_url=fake_provider.bedrock_endpoint_url)
    fake_provider.enqueue("bedrock", Reply(tokens=["Hi"], prompt_tokens=3))
    request = CompletionRequest("", [ChatMessage("user", PROMPT)], max_tokens=20)
    call = ModelCall(
        ProviderRegistry([adapter]), RetryPolicy(), Timeouts(), ["bedrock/m1"], request
    )
    assert [type(d).__name__ async for d in call] == ["TextDelta", "StreamEnd"]
    chat = _one(spans, "chat m1")
    assert (chat.attributes or {})["gen_ai.provider.name"] == "aws.bedrock"
    (sent,) = fake_provider.requests_to("bedrock")
    assert sent.headers["traceparent"].split("-")[2] == format(chat.context.span_id, "016x")


async def test_off_nothing_is_traced_and_nothing_is_sent_upstream(
    client: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    assert tracing.TRACER is None
    fake_provider.enqueue("openai", Reply(tokens=["x"]))
    await _chat(client, "openai/gpt-4o-mini", traceparent=TRACEPARENT)
    (sent,) = fake_provider.requests_to("openai")
    assert "traceparent" not in sent.headers
    assert not client.app._native_telemetry.enabled()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_SERVICE_NAME": "x"}, False),
    ],
)
def test_the_enabling_rule(environ: dict[str, str], on: bool) -> None:
    assert tracing.enabled_by(environ) is on
    provider = tracing.configure(environ)
    tracing.reset()
    assert (provider is not None) is on
    if provider is not None:
        provider.shutdown()


def test_the_tracer_is_named_and_the_service_defaults_to_symposia() -> None:
    provider = tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    try:
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "symposia"
        assert tracing.configure({}) is provider  # once per process
    finally:
        tracing.reset()
        assert provider is not None
        provider.shutdown()


def _spans_by(exporter: InMemorySpanExporter) -> dict[str, Any]:
    return {s.name: s for s in exporter.get_finished_spans()}


async def test_a_stopped_call_is_cancelled_not_failed(
    spans: InMemorySpanExporter, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=["a", "b"], stall_after=1))
    request = CompletionRequest("", [ChatMessage("user", "hi")])
    call = ModelCall(
        ProviderRegistry([scripted]), RetryPolicy(), Timeouts(), ["scripted/slow"], request
    )

    async def consume() -> None:
        async for _ in call:
            pass

    task = asyncio.create_task(consume())
    await eventually(lambda: scripted.streaming, within=2)
    await asyncio.sleep(0.05)  # the first chunk is out: the call stalls after it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    chat = _spans_by(spans)["chat slow"]
    assert (chat.attributes or {})["error.type"] == "cancelled"
    assert chat.status.status_code is StatusCode.UNSET


async def test_a_panels_reply_routes_and_answers_under_its_request(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("sup", Script(chunks=['{"agent": "billing", "reason": "money"}']))
    scripted.add_script("ledger", Script(chunks=["Refunded."]))
    panel = {"agents": [{"name": "billing", "description": "pays", "model": "scripted/ledger"}]}
    created = await client.post(
        "/api/conversations", json={"default_model": "scripted/sup", "panel": panel}
    )
    assert created.status_code == 201, created.text
    frames = await chat(client, conversation_id=created.json()["id"], message="my invoice")
    assert frames[-1].event == "done"
    await eventually(lambda: _named(spans, "chat ledger"), within=5)
    request = _one(spans, "POST /api/chat/stream")
    choice = _one(spans, "route_question")
    assert _parent_id(choice) == request.context.span_id
    assert (choice.attributes or {})["symposia.choice.agent"] == "billing"
    assert _parent_id(_one(spans, "chat sup")) == choice.context.span_id
    assert _parent_id(_one(spans, "chat ledger")) == request.context.span_id

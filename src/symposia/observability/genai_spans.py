"""The spans of a model's work, named and described by the OpenTelemetry GenAI
conventions: `invoke_workflow` (a run's task), `invoke_agent {bot}` (one turn),
`chat {model}` (one provider call, each attempt its own), and the choices a model makes
for a run or a panel (`select_speaker`, `route_question`).

Each helper is called only while tracing is on (`tracing.TRACER` is not None), or costs
that one check. Prompts and completions are set only when CAPTURE_CONTENT is `true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, StatusCode

from symposia.errors import ProviderError
from symposia.observability import tracing
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from symposia.providers.base import Provider

# Attribute names of the GenAI conventions (the semconv package marks them deprecated
# there, moved to their own repository: named here rather than imported with a warning).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
WORKFLOW_NAME = "gen_ai.workflow.name"
ERROR_TYPE = "error.type"
FIRST_CHUNK_EVENT = "gen_ai.first_chunk"
# The request's parameters, by CompletionRequest field, when set.
REQUEST_PARAMETERS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
}
# gen_ai.provider.name by the wire an adapter speaks; an OpenAI-compatible provider is
# named as configured (openai, openrouter, ollama...), which says more than its wire.
PROVIDER_BY_KIND = {"anthropic": "anthropic", "bedrock": "aws.bedrock"}


def provider_name(provider: Provider) -> str:
    return PROVIDER_BY_KIND.get(provider.kind, provider.name)


async def traced_call(
    stream: AsyncIterator[Delta], provider: Provider, request: CompletionRequest, attempt: int
) -> AsyncIterator[Delta]:
    """`stream` (one provider call) inside a `chat {model}` client span: current while
    the request is sent, so the adapter's `traceparent` names it; ended with the call's
    usage, finish reason and time to first chunk, or the failure's code."""
    tracer = tracing.TRACER
    assert tracer is not None
    span = tracer.start_span(
        f"chat {request.model}",
        kind=SpanKind.CLIENT,
        attributes=_request_attributes(provider, request, attempt),
    )
    capture = span.is_recording() and tracing.capture_content()
    if capture:
        span.set_attribute(INPUT_MESSAGES, input_messages(request.messages))
    output = _Output() if capture else None
    end: StreamEnd | None = None
    started = time.perf_counter()
    try:
        # The request is sent before the first delta comes: only then is the span current
        # (attached and detached in this one step, so whoever closes the stream may).
        token = context.attach(trace.set_span_in_context(span))
        try:
            first = await anext(stream, None)
        finally:
            context.detach(token)
        if first is None:
            return
        if type(first) is StreamEnd:
            end = first
        else:
            span.set_attribute(TIME_TO_FIRST_CHUNK, time.perf_counter() - started)
            span.add_event(FIRST_CHUNK_EVENT)
            if output is not None:
                output.add(first)
        yield first
        async for delta in stream:  # the rest, with as little as can be done per delta
            if type(delta) is StreamEnd:
                end = delta
            elif output is not None:
                output.add(delta)
            yield delta
    except ProviderError as exc:
        _failed(span, exc.failure.code)
        raise
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):  # the consumer left: not a failure
            _failed(span, "cancelled" if _cancelled(exc) else type(exc).__qualname__)
        raise
    finally:
        if end is not None:
            _ended(span, end, request.model)
        if output is not None:
            span.set_attribute(OUTPUT_MESSAGES, output.json(end))
        span.end()
        if hasattr(stream, "aclose"):  # the call's connection, released now
            await stream.aclose()


def _request_attributes(
    provider: Provider, request: CompletionRequest, attempt: int
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        OPERATION: "chat",
        PROVIDER: provider_name(provider),
        REQUEST_MODEL: request.model,
        "symposia.provider": provider.name,
        "symposia.attempt": attempt,
    }
    for field, name in REQUEST_PARAMETERS.items():
        value = getattr(request, field)
        if value is not None:
            attributes[name] = value
    if request.stop:
        attributes["gen_ai.request.stop_sequences"] = list(request.stop)
    base_url = getattr(getattr(provider, "config", None), "base_url", None)
    if isinstance(base_url, str):
        attributes.update(_server_of(base_url))
    return attributes


@functools.cache
def _server_of(base_url: str) -> dict[str, Any]:
    """`server.address` and `server.port` of a provider's base URL (read once)."""
    address = urlsplit(base_url)
    if not address.hostname:
        return {}
    port = address.port or (443 if address.scheme == "https" else 80)
    return {"server.address": address.hostname, "server.port": port}


def _ended(span: Span, end: StreamEnd, model: str) -> None:
    span.set_attribute(RESPONSE_MODEL, end.model or model)
    if end.finish_reason:
        span.set_attribute(FINISH_REASONS, [end.finish_reason])
    if end.prompt_tokens is not None:
        span.set_attribute(INPUT_TOKENS, end.prompt_tokens)
    if end.completion_tokens is not None:
        span.set_attribute(OUTPUT_TOKENS, end.completion_tokens)


def _failed(span: Span, code: str) -> None:
    """`error.type` (a failure's code, never its message: it may quote the prompt), and
    the error status unless it was a cancellation (a stop is no failure)."""
    span.set_attribute(ERROR_TYPE, code)
    if code != "cancelled":
        span.set_status(StatusCode.ERROR)


def _cancelled(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


class _Output:
    """The answer's text and tool calls, gathered only to be recorded (content capture)."""

    __slots__ = ("calls", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, delta: Delta) -> None:
        if type(delta) is TextDelta:
            self.parts.append(delta.text)
        elif type(delta) is ToolCallDelta:
            call = self.calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            call["name"] += delta.name or ""
            call["arguments"] += delta.arguments

    def json(self, end: StreamEnd | None) -> str:
        parts: list[dict[str, Any]] = []
        if self.parts:
            parts.append({"type": "text", "content": "".join(self.parts)})
        parts += [{"type": "tool_call", **call} for _, call in sorted(self.calls.items())]
        message = {"role": "assistant", "parts": parts}
        if end is not None and end.finish_reason:
            message["finish_reason"] = end.finish_reason
        return json.dumps([message], ensure_ascii=False)


def input_messages(messages: Sequence[ChatMessage]) -> str:
    """A prompt in the conventions' shape: `[{role, parts: [{type, content}...]}...]`."""
    shaped: list[dict[str, Any]] = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        if message.role == "tool":
            response = {"id": message.tool_call_id, "response": message.content}
            parts.append({"type": "tool_call_response", **response})
        elif message.content:
            parts.append({"type": "text", "content": message.content})
        parts += [
            {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments}
            for c in message.tool_calls
        ]
        shaped.append({"role": message.role, "parts": parts})
    return json.dumps(shaped, ensure_ascii=False)


async def traced_run(run_id: str, work: Coroutine[Any, Any, None]) -> None:
    """A run's task (`execute`, `resume` or `wake`: its `symposia.run.phase`) as one
    `invoke_workflow` span, the parent of its turns: a child of the request that started
    it, if any. `describe_run` names the workflow once the run is read."""
    tracer = tracing.TRACER
    assert tracer is not None
    attributes = {
        OPERATION: "invoke_workflow",
        CONVERSATION_ID: run_id,
        "symposia.run.id": run_id,
        "symposia.run.phase": getattr(work, "__name__", "run"),
    }
    with _span(tracer, "invoke_workflow run", attributes):
        await work


def describe_run(strategy: str, bots: int) -> None:
    """Name the current run span by its strategy (a no-op off a run span)."""
    if tracing.TRACER is None:
        return
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None) or {}
    if attributes.get(OPERATION) == "invoke_workflow" and WORKFLOW_NAME not in attributes:
        span.update_name(f"invoke_workflow {strategy}")
        span.set_attributes({WORKFLOW_NAME: strategy, "symposia.run.bots": bots})


@contextlib.contextmanager
def agent_turn(
    run_id: str, name: str, index: int, model: str, turn: int, round: int | None
) -> Iterator[None]:
    """One turn of a run as an `invoke_agent {name}` span, current while it lasts."""
    tracer = tracing.TRACER
    if tracer is None:
        yield
        return
    attributes: dict[str, Any] = {
        OPERATION: "invoke_agent",
        AGENT_NAME: name,
        AGENT_ID: str(index),
        REQUEST_MODEL: model,
        CONVERSATION_ID: run_id,
        "symposia.turn": turn,
    }
    if round is not None:
        attributes["symposia.round"] = round
    with _span(tracer, f"invoke_agent {name}", attributes):
        yield


@contextlib.contextmanager
def choice(name: str, model: str, **attributes: Any) -> Iterator[Span | None]:
    """A model's choice for a run or a panel (`select_speaker`, `route_question`) as a
    span around the calls that make it; the caller adds what was chosen."""
    tracer = tracing.TRACER
    if tracer is None:
        yield None
        return
    with _span(tracer, name, {REQUEST_MODEL: model, **attributes}) as span:
        yield span


def chose(span: Span | None, agent: str, attempts: int, fallback: bool, answer: str) -> None:
    """What a choice span's model chose (its own words only with content capture)."""
    if span is None or not span.is_recording():
        return
    span.set_attributes(
        {
            "symposia.choice.agent": agent,
            "symposia.choice.attempts": attempts,
            "symposia.choice.fallback": fallback,
        }
    )
    if answer and tracing.capture_content():
        span.set_attribute("symposia.choice.answer", answer)


@contextlib.contextmanager
def _span(tracer: trace.Tracer, name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    """An internal span, current while the block runs; an exception sets `error.type`
    (a cancellation too, but not the span's error status: a stop is no failure)."""
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                _failed(span, "cancelled" if _cancelled(exc) else type(exc).__qualname__)
            raise

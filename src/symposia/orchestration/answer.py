"""The one generation path: how a model call is made and read, whoever consumes it.

Run turns, conversation replies, a policy's private question and the `/v1` relay all
build their call with `Models.call` and read it through an `Answer`. The answer cuts the
text at the first stop sequence, keeps the text and the tool calls produced, times the
first output, counts the token metrics and estimates the usage when the provider reports
none. Only what is done with each delta differs: `token` events in an event log, OpenAI
chunks on a socket, a plain string.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from symposia.aio import complete
from symposia.domain.models import TurnUsage
from symposia.errors import ProviderError
from symposia.observability.metrics import Metrics
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from symposia.providers.stop import StopFilter

if TYPE_CHECKING:
    from symposia.governance.meter import Meter

CHARS_PER_TOKEN_ESTIMATE = 4
# OpenAI's finish reasons; a provider's other reasons read as "stop".
FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls"})


@dataclass(frozen=True, slots=True)
class Models:
    """How model calls are made: the registry, the retry policy, the timeouts, and the
    meter every call passes (keys' limits and budgets, the usage ledger)."""

    registry: ProviderRegistry
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    metrics: Metrics | None = None
    meter: Meter | None = None

    def call(self, candidates: Sequence[str], request: CompletionRequest) -> ModelCall:
        """The call of `request` to the first of `candidates` that answers (the others
        are its fallbacks), with the retries, timeouts and metrics of every call."""
        metrics = self.metrics
        return ModelCall(
            self.registry,
            self.policy,
            self.timeouts,
            list(candidates),
            request,
            observe=metrics.provider_call if metrics is not None else None,
        )

    def count_tokens(self, model: str, deltas: int) -> None:
        """Count the text deltas that reached a consumer, in the metrics."""
        if self.metrics is not None and deltas and model:
            provider, _, name = self.registry.canonical(model).partition("/")
            self.metrics.count_tokens(provider, name, deltas)


def prompt_chars(messages: Sequence[ChatMessage]) -> int:
    return sum(len(m.content) for m in messages)


@dataclass(slots=True)
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Answer:
    """One model call, read once: iterate it for its deltas (text cut at the first stop
    sequence, tool-call pieces, then one `StreamEnd` with an OpenAI finish reason and the
    usage, estimated if need be). What it produced stays here for the caller to keep.

    `on_close` runs when the iteration ends, however it ends (a consumer that leaves, a
    failure), and before that end reaches the consumer, shielded from cancellation: the
    relay keeps the reply there before the client sees the end of its response.
    """

    models: Models
    call: ModelCall
    on_close: Callable[[Answer], Coroutine[Any, Any, None]] | None = None
    streamed: bool = True  # counted in the metrics of streamed tokens
    parts: list[str] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)
    end: StreamEnd | None = None
    finish: str = "stop"
    complete: bool = False
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    _calls: dict[int, _ToolCallParts] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        models: Models,
        candidates: Sequence[str],
        request: CompletionRequest,
        on_close: Callable[[Answer], Coroutine[Any, Any, None]] | None = None,
    ) -> Answer:
        return cls(models, models.call(candidates, request), on_close)

    @property
    def model(self) -> str:
        """The `provider/model` that answered (a fallback may have), once it began."""
        return self.call.model

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(c.id, c.name, "".join(c.arguments)) for _, c in sorted(self._calls.items())
        ]

    async def __aiter__(self) -> AsyncGenerator[Delta]:
        meter = self.models.meter
        # The key's limits and budget, before any upstream call (a refusal raises here).
        ticket = await meter.admit(self.call) if meter is not None else None
        stops = self.call.request.stop
        stop = StopFilter(stops) if stops else None
        parts = self.parts
        status = "error"
        try:
            async for delta in self.call:
                if type(delta) is TextDelta:
                    text = stop.feed(delta.text) if stop is not None else delta.text
                    if text:
                        if self.first is None:
                            self.first = time.perf_counter()
                        parts.append(text)
                        if delta.logprobs:
                            self.logprobs.extend(delta.logprobs)
                        yield delta if stop is None else TextDelta(text, delta.logprobs)
                    if stop is not None and stop.stopped:
                        break
                elif type(delta) is ToolCallDelta:
                    if self.first is None:
                        self.first = time.perf_counter()
                    self._note(delta)
                    yield delta
                else:
                    self.end = delta  # type: ignore[assignment]
            if stop is not None and (tail := stop.flush()):
                parts.append(tail)
                yield TextDelta(tail)
            self.finish = self._finish_reason(stop)
            self.complete = True
            usage = self.usage()
            status = "ok"
            yield StreamEnd(self.finish, usage.prompt_tokens, usage.completion_tokens)
        except ProviderError as exc:
            status = exc.failure.code
            raise
        except (asyncio.CancelledError, GeneratorExit):
            status = "cancelled"
            raise
        finally:
            if self.streamed:
                self.models.count_tokens(self.model, len(parts))
            if ticket is not None and meter is not None:
                requested = self.call.models[0] if self.call.models else self.model
                await complete(meter.finish(ticket, requested, self.model, self.used(), status))
            if self.on_close is not None:
                await complete(self.on_close(self))

    def _note(self, delta: ToolCallDelta) -> None:
        parts = self._calls.get(delta.index)
        if parts is None:
            parts = self._calls[delta.index] = _ToolCallParts()
        if delta.id:
            parts.id = delta.id
        if delta.name:
            parts.name += delta.name
        if delta.arguments:
            parts.arguments.append(delta.arguments)

    def _finish_reason(self, stop: StopFilter | None) -> str:
        if stop is not None and stop.stopped:
            return "stop"
        reason = self.end.finish_reason if self.end is not None else None
        if self._calls and reason != "length":
            return "tool_calls"
        return reason if reason in FINISH_REASONS else "stop"

    def used(self) -> TurnUsage:
        """What the call cost in tokens: its usage once the provider answered; nothing
        when it failed or was cut before any (a call refused upstream is not billed)."""
        if self.end is None and self.first is None:
            return TurnUsage(prompt_tokens=0, completion_tokens=0, estimated=True)
        return self.usage()

    def usage(self, prompt: int | None = None) -> TurnUsage:
        """Tokens and timing so far: the provider's counts, or estimated from the text
        (`prompt` characters, by default the request's)."""
        now, first, end = time.perf_counter(), self.first, self.end
        usage = TurnUsage(
            time_to_first_token_ms=round((first - self.started) * 1000, 2) if first else None,
            total_ms=round((now - self.started) * 1000, 2),
        )
        if end is not None and end.prompt_tokens is not None and end.completion_tokens is not None:
            usage.prompt_tokens = end.prompt_tokens
            usage.completion_tokens = end.completion_tokens
            return usage
        if prompt is None:
            prompt = prompt_chars(self.call.request.messages)
        produced = sum(len(p) for p in self.parts) + sum(
            len(c.name) + sum(len(a) for a in c.arguments) for c in self._calls.values()
        )
        return estimate(prompt, produced, usage)


def estimate(prompt: int, produced: int, usage: TurnUsage | None = None) -> TurnUsage:
    """The usage of a call whose provider reported none: about four characters a token."""
    usage = usage or TurnUsage()
    usage.prompt_tokens = max(1, prompt // CHARS_PER_TOKEN_ESTIMATE)
    usage.completion_tokens = produced // CHARS_PER_TOKEN_ESTIMATE
    usage.estimated = True
    return usage

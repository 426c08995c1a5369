"""One model call streamed into an event log, producing one message whatever happens.

Shared by run turns and conversation replies. The text is kept on every exit: complete
when the model finished, `partial` when a stop (cancellation) or a provider failure cut
it short. Failures come out as `GenerationFailedError` carrying the user-facing shape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from symposia.domain.event_types import Speaker, Token, emit
from symposia.domain.models import Message, MessageStatus, TurnUsage, utcnow
from symposia.errors import FencedOutError, ProviderError, ProviderFailure, SymposiaError
from symposia.events.log import Appender
from symposia.observability.metrics import Metrics
from symposia.providers.base import ChatMessage, CompletionRequest, StreamEnd, TextDelta
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts

CHARS_PER_TOKEN_ESTIMATE = 4


class GenerationFailedError(Exception):
    """A model call failed; `failure` is what the user is shown."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class Models:
    """How model calls are made: the registry, the retry policy and the timeouts."""

    registry: ProviderRegistry
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    metrics: Metrics | None = None


@dataclass(slots=True)
class Generation:
    """Streams `models` (the first, then its fallbacks) into `stream_id` as the `token`
    events of `speaker`, at the writer's lease `epoch` (None for an unleased stream)."""

    models: Models
    log: Appender
    stream_id: str
    speaker: Speaker
    epoch: int | None = None
    parts: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    end: StreamEnd | None = None
    model: str | None = None

    async def stream(
        self,
        candidates: Sequence[str],
        messages: Sequence[ChatMessage],
        temperature: float,
        max_tokens: int,
    ) -> None:
        request = CompletionRequest("", messages, temperature=temperature, max_tokens=max_tokens)
        metrics = self.models.metrics
        call = ModelCall(
            self.models.registry,
            self.models.policy,
            self.models.timeouts,
            list(candidates),
            request,
            observe=metrics.provider_call if metrics is not None else None,
        )
        fields = self.speaker.token_fields()
        try:
            async for delta in call:
                self.model = call.model
                if isinstance(delta, TextDelta):
                    if self.first_token is None:
                        self.first_token = time.perf_counter()
                    self.parts.append(delta.text)
                    await emit(self.log, self.stream_id, Token(fields, delta.text), self.epoch)
                else:
                    self.end = delta
        except ProviderError as exc:
            raise GenerationFailedError(exc.failure) from exc
        except FencedOutError:
            raise  # not the model's failure: the writer lost the run
        except SymposiaError as exc:
            provider, _, _ = (call.model or candidates[0]).partition("/")
            raise GenerationFailedError(
                ProviderFailure(
                    code=exc.code,
                    message=exc.message,
                    provider=provider,
                    model=call.model or candidates[0],
                    status=exc.status_code,
                )
            ) from exc

    def finish(self, message: Message, status: MessageStatus, prompt_chars: int) -> Message:
        """Fill `message` with what was produced: text, status, usage, the model that spoke."""
        message.content = "".join(self.parts)
        message.status = status
        message.completed_at = utcnow()
        if self.model:
            message.model = self.model  # a fallback may have answered
        message.usage = self._usage(message, prompt_chars)
        metrics = self.models.metrics
        if metrics is not None and self.parts and self.model:
            provider, _, model = self.model.partition("/")
            metrics.tokens.labels(provider, model).inc(len(self.parts))
        return message

    def _usage(self, message: Message, prompt_chars: int) -> TurnUsage:
        now, first, end = time.perf_counter(), self.first_token, self.end
        usage = TurnUsage(
            time_to_first_token_ms=round((first - self.started) * 1000, 2) if first else None,
            total_ms=round((now - self.started) * 1000, 2),
        )
        if end is not None and end.prompt_tokens is not None and end.completion_tokens is not None:
            usage.prompt_tokens = end.prompt_tokens
            usage.completion_tokens = end.completion_tokens
        else:
            usage.prompt_tokens = max(1, prompt_chars // CHARS_PER_TOKEN_ESTIMATE)
            usage.completion_tokens = len(message.content) // CHARS_PER_TOKEN_ESTIMATE
            usage.estimated = True
        return usage


async def answer_of(
    models: Models, model: str, messages: Sequence[ChatMessage], max_tokens: int = 200
) -> str:
    """A model's whole answer, not streamed to anyone: a supervisor's choice, a verdict.
    Asked at temperature 0, with the retries of any call; a failure is GenerationFailedError."""
    request = CompletionRequest("", messages, temperature=0.0, max_tokens=max_tokens)
    metrics = models.metrics
    call = ModelCall(
        models.registry,
        models.policy,
        models.timeouts,
        [model],
        request,
        observe=metrics.provider_call if metrics is not None else None,
    )
    parts: list[str] = []
    try:
        async for delta in call:
            if isinstance(delta, TextDelta):
                parts.append(delta.text)
    except ProviderError as exc:
        raise GenerationFailedError(exc.failure) from exc
    return "".join(parts)


def prompt_chars(messages: Sequence[ChatMessage]) -> int:
    return sum(len(m.content) for m in messages)

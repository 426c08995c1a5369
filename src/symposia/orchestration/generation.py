"""One model call streamed into an event log, producing one message whatever happens.

Shared by run turns and conversation replies. The text is kept on every exit: complete
when the model finished, `partial` when a stop (cancellation) or a provider failure cut
it short. Failures come out as `GenerationFailedError` carrying the user-facing shape.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from symposia.domain.event_types import Speaker, Token, ToolCalled
from symposia.domain.models import Message, MessageStatus, utcnow
from symposia.errors import (
    FencedOutError,
    ProviderError,
    ProviderFailure,
    SymposiaError,
    UnavailableError,
)
from symposia.events.emit import emit
from symposia.events.log import Appender, StreamNotFoundError
from symposia.orchestration.answer import (
    CHARS_PER_TOKEN_ESTIMATE,
    Answer,
    Models,
    estimate,
    prompt_chars,
)
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    ResponseFormat,
    TextDelta,
    Tool,
)

__all__ = [
    "CHARS_PER_TOKEN_ESTIMATE",
    "Generation",
    "GenerationFailedError",
    "Models",
    "answer_of",
    "prompt_chars",
]


class GenerationFailedError(Exception):
    """A model call failed; `failure` is what the user is shown."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(slots=True)
class Generation:
    """Streams `models` (the first, then its fallbacks) into `stream_id` as the `token`
    events of `speaker`, at the writer's lease `epoch` (None for an unleased stream)."""

    models: Models
    log: Appender
    stream_id: str
    speaker: Speaker
    epoch: int | None = None
    started: float = field(default_factory=time.perf_counter)
    answer: Answer | None = None

    async def stream(
        self,
        candidates: Sequence[str],
        messages: Sequence[ChatMessage],
        temperature: float | None,
        max_tokens: int | None,
        tools: tuple[Tool, ...] = (),
    ) -> None:
        """Stream the answer as `token` events; the tool calls it asked for, each whole,
        as `tool_call` events once it ended."""
        request = CompletionRequest(
            "",
            messages,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            truncation="auto",  # a long run's oldest turns make way, as the context does
        )
        answer = self.answer = Answer.of(self.models, candidates, request)
        answer.started = self.started
        fields = self.speaker.token_fields()
        try:
            async for delta in answer:
                if type(delta) is TextDelta:
                    await emit(self.log, self.stream_id, Token(fields, delta.text), self.epoch)
            for call in answer.tool_calls:
                called = ToolCalled(self.speaker, call.id, call.name, call.arguments)
                await emit(self.log, self.stream_id, called, self.epoch)
        except ProviderError as exc:
            raise GenerationFailedError(exc.failure) from exc
        except (FencedOutError, UnavailableError, StreamNotFoundError):
            raise  # not the model's failure: the writer lost the run, or its log failed
        except SymposiaError as exc:
            model = answer.model or candidates[0]
            raise GenerationFailedError(
                ProviderFailure(
                    code=exc.code,
                    message=exc.message,
                    provider=model.partition("/")[0],
                    model=model,
                    status=exc.status_code,
                )
            ) from exc

    def finish(self, message: Message, status: MessageStatus, prompt_chars: int) -> Message:
        """Fill `message` with what was produced: text, status, usage, the model that spoke."""
        answer = self.answer
        message.status = status
        message.completed_at = utcnow()
        if answer is None:  # never started
            message.content = ""
            message.usage = estimate(prompt_chars, 0)
            return message
        message.content = answer.text
        if answer.tool_calls:
            message.tool_calls = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in answer.tool_calls
            ]
        if answer.model:
            message.model = answer.model  # a fallback may have answered
        message.usage = answer.usage(prompt_chars)
        return message


def object_format(name: str, properties: dict[str, Any]) -> ResponseFormat:
    """Structured output of one JSON object with exactly `properties`, all required:
    how a supervisor, a moderator or a judge is asked for a strict answer."""
    return ResponseFormat(
        "json_schema",
        name=name,
        schema={
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    )


async def answer_of(
    models: Models,
    model: str,
    messages: Sequence[ChatMessage],
    max_tokens: int = 200,
    response_format: ResponseFormat | None = None,
) -> str:
    """A model's whole answer, not streamed to anyone: a supervisor's choice, a verdict.
    Asked at temperature 0, with the retries of any call; a failure is GenerationFailedError.
    `response_format` holds the answer to a schema where the model's provider can (the
    local model by a grammar); elsewhere the caller's parsing is the only check."""
    if response_format is not None:
        provider, _ = models.registry.resolve(model)
        if "response_format" not in provider.features:
            response_format = None
    request = CompletionRequest(
        "",
        messages,
        temperature=0.0,
        max_tokens=max_tokens,
        response_format=response_format,
        truncation="auto",
    )
    answer = Answer.of(models, [model], request)
    answer.streamed = False
    try:
        async for _ in answer:
            pass
    except ProviderError as exc:
        raise GenerationFailedError(exc.failure) from exc
    except (FencedOutError, UnavailableError):
        raise
    except SymposiaError as exc:  # refused before the call: the caller's key's limits
        raise GenerationFailedError(
            ProviderFailure(
                code=exc.code,
                message=exc.message,
                provider=model.partition("/")[0],
                model=model,
                status=exc.status_code,
            )
        ) from exc
    return answer.text

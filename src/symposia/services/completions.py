"""OpenAI-style chat completions over any Symposia model, streamed lean.

No event log here: an OpenAI client has no Last-Event-ID to resume with, so the relay
goes straight from the model call to the socket, and a client that leaves cancels the
upstream call at once. The first delta is awaited before the response starts, so a
failure before any output is a proper HTTP error (as OpenAI's own API does it).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from symposia.aio import complete
from symposia.domain.models import Message, MessageStatus, TurnUsage, utcnow
from symposia.errors import InvalidInputError, NotFoundError, SymposiaError
from symposia.orchestration.generation import CHARS_PER_TOKEN_ESTIMATE, Models
from symposia.providers.base import ChatMessage, CompletionRequest, Delta, StreamEnd, TextDelta
from symposia.providers.resilience import ModelCall
from symposia.providers.stop import StopFilter
from symposia.services.conversations import ConversationService
from symposia.storage.failures import summary
from symposia.streaming.openai_chunks import DONE, SYSTEM_FINGERPRINT, ChunkEncoder
from symposia.streaming.openai_errors import openai_error

logger = logging.getLogger(__name__)

NEW_CONVERSATION = "new"
ROLES = {"developer": "system", "system": "system", "user": "user", "assistant": "assistant"}


@dataclass(slots=True)
class CompletionCall:
    """One validated request, ready to run."""

    model: str
    request: CompletionRequest
    include_usage: bool
    owner: str | None
    conversation_id: str | None = None
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass(slots=True)
class _Outcome:
    parts: list[str] = field(default_factory=list)
    end: StreamEnd | None = None
    finish: str = "stop"
    status: MessageStatus = MessageStatus.PARTIAL
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None


@dataclass(slots=True)
class CompletionService:
    models: Models
    conversations: ConversationService
    default_max_tokens: int
    max_tokens_limit: int

    async def prepare(
        self,
        *,
        model: str,
        messages: Sequence[tuple[str, str]],
        temperature: float | None,
        top_p: float | None,
        max_tokens: int | None,
        stop: tuple[str, ...],
        include_usage: bool,
        owner: str | None,
        conversation: str | None,
    ) -> CompletionCall:
        """Validate everything a client sent before any model is called."""
        try:
            await self.conversations.check_model(model, "model")
        except InvalidInputError as exc:
            raise NotFoundError(f"{exc.message}; GET /v1/models lists them") from None
        limit = max_tokens or self.default_max_tokens
        if limit > self.max_tokens_limit:
            raise InvalidInputError(
                f"max_tokens is {limit}, above MAX_TOKENS_LIMIT ({self.max_tokens_limit})",
                "max_tokens",
            )
        chat = [ChatMessage(ROLES[role], text) for role, text in messages]  # type: ignore[arg-type]
        request = CompletionRequest(
            model="",
            messages=chat,
            temperature=0.7 if temperature is None else temperature,
            max_tokens=limit,
            top_p=top_p,
            stop=stop,
        )
        call = CompletionCall(model, request, include_usage, owner)
        if conversation is not None:
            call.conversation_id = await self._attach(conversation, model, chat, owner)
        return call

    async def _attach(
        self, conversation: str, model: str, chat: list[ChatMessage], owner: str | None
    ) -> str:
        """X-Symposia-Conversation: keep the exchange; the asking message is saved now."""
        asking = chat[-1].content if chat and chat[-1].role == "user" else None
        created = conversation == NEW_CONVERSATION
        if created:
            if asking is not None:  # checked before anything is written
                self.conversations.check_text(asking)
            conversation_id = (await self.conversations.create(default_model=model, owner=owner)).id
        else:
            conversation_id = (await self.conversations.get(conversation, owner=owner)).id
        try:
            if asking is not None:
                await self.conversations.add_user_message(
                    conversation_id, asking, model, owner=owner
                )
        except BaseException:
            if created:  # a failed request leaves no empty conversation behind
                await self.conversations.discard(conversation_id)
            raise
        return conversation_id

    def _model_call(self, call: CompletionCall) -> ModelCall:
        metrics = self.models.metrics
        return ModelCall(
            self.models.registry,
            self.models.policy,
            self.models.timeouts,
            [call.model],
            call.request,
            observe=metrics.provider_call if metrics is not None else None,
        )

    async def start(self, call: CompletionCall) -> AsyncIterator[bytes]:
        """Await the first delta (a failure now raises, for an HTTP error), then return
        the byte stream of the response."""
        deltas = aiter(self._model_call(call))
        outcome = _Outcome()
        try:
            first = await anext(deltas)
        except StopAsyncIteration:
            first = StreamEnd("stop")
        except BaseException:
            await self._save(call, outcome)
            raise
        return self._relay(call, deltas, first, outcome)

    async def _relay(
        self,
        call: CompletionCall,
        deltas: AsyncIterator[Delta],
        first: Delta,
        outcome: _Outcome,
    ) -> AsyncIterator[bytes]:
        """The response's bytes. Chunks produced at the same moment leave as one write (the
        role chunk with the first text; the finish, usage and `[DONE]` together): each
        write costs a trip through the middleware and a system call."""
        encoder = ChunkEncoder(call.completion_id, call.created, call.model, call.include_usage)
        stop = StopFilter(call.request.stop) if call.request.stop else None
        parts = outcome.parts
        head = encoder.role()  # leaves with the first text, or with the end
        try:
            delta: Delta | None = first
            while delta is not None:
                if type(delta) is TextDelta:
                    text = stop.feed(delta.text) if stop is not None else delta.text
                    if text:
                        if outcome.first is None:
                            outcome.first = time.perf_counter()
                        parts.append(text)
                        yield head + encoder.content(text)
                        head = b""
                    if stop is not None and stop.stopped:
                        break
                else:
                    outcome.end = delta  # type: ignore[assignment]
                delta = await anext(deltas, None)
            if stop is not None and (tail := stop.flush()):
                parts.append(tail)
                head += encoder.content(tail)
            outcome.finish = _finish_reason(outcome.end, stop)
            outcome.status = MessageStatus.COMPLETE
            end = head + encoder.finish(outcome.finish)
            if call.include_usage:
                usage = _usage(call, outcome)
                end += encoder.usage(usage.prompt_tokens, usage.completion_tokens)
            end += DONE
        except SymposiaError as exc:  # after output began: a final error chunk, then the end
            end = head + encoder.error(openai_error(exc)[1])
        finally:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()
            await complete(self._save(call, outcome))  # kept before the client sees the end
        yield end

    async def complete(self, call: CompletionCall) -> dict[str, Any]:
        """The whole answer as one `chat.completion` object."""
        outcome = _Outcome()
        stop = StopFilter(call.request.stop) if call.request.stop else None
        try:
            async for delta in self._model_call(call):
                if type(delta) is TextDelta:
                    text = stop.feed(delta.text) if stop is not None else delta.text
                    outcome.parts.append(text)
                    if outcome.first is None:
                        outcome.first = time.perf_counter()
                    if stop is not None and stop.stopped:
                        break
                else:
                    outcome.end = delta  # type: ignore[assignment]
            if stop is not None:
                outcome.parts.append(stop.flush())
            outcome.finish = _finish_reason(outcome.end, stop)
            outcome.status = MessageStatus.COMPLETE
        finally:
            await complete(self._save(call, outcome))
        usage = _usage(call, outcome)
        return {
            "id": call.completion_id,
            "object": "chat.completion",
            "created": call.created,
            "model": call.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(outcome.parts),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": outcome.finish,
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }

    async def _save(self, call: CompletionCall, outcome: _Outcome) -> None:
        """Count what reached the client, and keep the reply when a conversation asked."""
        metrics = self.models.metrics
        if metrics is not None and outcome.parts:
            provider, _, model = call.model.partition("/")
            metrics.tokens.labels(provider, model).inc(len(outcome.parts))
        text = "".join(outcome.parts)
        if call.conversation_id is None or not text:
            return
        reply = Message(
            role="assistant",
            author="assistant",
            content=text,
            model=call.model,
            status=outcome.status,
            usage=_usage(call, outcome),
            completed_at=utcnow(),
        )
        try:
            await self.conversations.repo.add_message(call.conversation_id, reply)
        except Exception as exc:  # the client has its answer; the response still ends well
            logger.error("could not save a reply of %s: %s", call.conversation_id, summary(exc))


def _finish_reason(end: StreamEnd | None, stop: StopFilter | None) -> str:
    if stop is not None and stop.stopped:
        return "stop"
    reason = end.finish_reason if end is not None else None
    return reason if reason in ("stop", "length", "content_filter") else "stop"


def _usage(call: CompletionCall, outcome: _Outcome) -> TurnUsage:
    end = outcome.end
    now = time.perf_counter()
    usage = TurnUsage(
        time_to_first_token_ms=round((outcome.first - outcome.started) * 1000, 2)
        if outcome.first
        else None,
        total_ms=round((now - outcome.started) * 1000, 2),
    )
    if end is not None and end.prompt_tokens is not None and end.completion_tokens is not None:
        usage.prompt_tokens, usage.completion_tokens = end.prompt_tokens, end.completion_tokens
    else:
        chars = sum(len(m.content) for m in call.request.messages)
        usage.prompt_tokens = max(1, chars // CHARS_PER_TOKEN_ESTIMATE)
        usage.completion_tokens = sum(len(p) for p in outcome.parts) // CHARS_PER_TOKEN_ESTIMATE
        usage.estimated = True
    return usage

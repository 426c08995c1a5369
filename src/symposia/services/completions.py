"""Chat completions over any Symposia model, as typed deltas for a transport to encode.

No event log here: an OpenAI client has no Last-Event-ID to resume with, so the relay
goes straight from the model call to the socket, and a client that leaves cancels the
upstream call at once. The first delta is awaited before the response starts, so a
failure before any output is a proper HTTP error (as OpenAI's own API does it). The
wire format (OpenAI's chunks, its `chat.completion` object) is the transport's job.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from symposia.domain.models import Message, MessageStatus, TurnUsage, utcnow
from symposia.errors import (
    AmbiguousModelError,
    InvalidInputError,
    NotFoundError,
    UnsupportedParameterError,
)
from symposia.governance.call_context import CallContext, calling
from symposia.orchestration.answer import Answer, Models
from symposia.providers.base import CompletionRequest, Delta, ToolCall, features_of
from symposia.providers.request_fields import refused_option
from symposia.services.conversations import ConversationService
from symposia.storage.failures import summary

logger = logging.getLogger(__name__)

NEW_CONVERSATION = "new"


@dataclass(slots=True)
class CompletionCall:
    """One validated request, ready to run."""

    model: str
    request: CompletionRequest
    owner: str | None
    conversation_id: str | None = None
    surface: str = "/v1/chat/completions"  # what the usage ledger says it came from
    response_id: str | None = None

    def context(self) -> CallContext:
        """Whose call this is, for the meter (`governance.call_context`)."""
        return CallContext(
            self.owner,
            self.surface,
            conversation_id=self.conversation_id,
            response_id=self.response_id,
        )


@dataclass(frozen=True, slots=True)
class Started:
    """A streamed answer whose first delta has arrived: `first`, then the `rest`."""

    first: Delta
    rest: AsyncGenerator[Delta]


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer."""

    text: str
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: TurnUsage
    logprobs: list[Any] | None = None  # when the request asked for them


@dataclass(slots=True)
class CompletionService:
    models: Models
    conversations: ConversationService
    max_tokens_limit: int

    async def prepare(
        self,
        model: str,
        request: CompletionRequest,
        *,
        owner: str | None,
        conversation: str | None,
        message_field: str | None = "messages",
    ) -> CompletionCall:
        """Validate everything a client sent before any model is called: each message
        within MAX_MESSAGE_CHARS (413 naming `{message_field}.{i}.content`; None: the
        caller checked its own), the model, the token limit, and that the provider
        honours every parameter that was set (`request_fields` places the others)."""
        if message_field is not None:
            for index, message in enumerate(request.messages):
                self.conversations.check_text(message.content, f"{message_field}.{index}.content")
        try:
            await self.conversations.check_model(model, "model")
        except AmbiguousModelError:
            raise
        except InvalidInputError as exc:
            raise NotFoundError(f"{exc.message}; GET /v1/models lists them") from None
        limit = request.max_tokens
        if limit is not None and limit > self.max_tokens_limit:
            raise InvalidInputError(
                f"max_tokens is {limit}, above MAX_TOKENS_LIMIT ({self.max_tokens_limit})",
                "max_tokens",
            )
        provider, _ = self.models.registry.resolve(model)
        for feature, parameter in features_of(request).items():
            if feature not in provider.features:
                what = "tool calls in messages" if parameter == "messages" else parameter
                raise UnsupportedParameterError(
                    f"{what} is not supported by the {provider.name} provider "
                    f"(model {model}); choose a model of a provider that supports it",
                    parameter,
                )
        if request.options:
            refused = refused_option(provider.kind, request.options)
            if refused is not None:
                raise UnsupportedParameterError(
                    f"{refused} is not supported by the {provider.name} provider "
                    f"(model {model}); docs/openai.md says where each field goes",
                    refused,
                )
        call = CompletionCall(model, request, owner)
        if conversation is not None:
            call.conversation_id = await self._attach(conversation, model, request, owner)
        return call

    async def _attach(
        self, conversation: str, model: str, request: CompletionRequest, owner: str | None
    ) -> str:
        """X-Symposia-Conversation: keep the exchange; the asking message is saved now."""
        chat = request.messages
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

    def _answer(self, call: CompletionCall) -> Answer:
        async def save(answer: Answer) -> None:
            await self._save(call, answer)

        return Answer.of(self.models, [call.model], call.request, save)

    async def start(self, call: CompletionCall) -> Started:
        """Await the first delta (a failure now raises, for an HTTP error). The rest
        ends with one `StreamEnd` carrying the finish reason and the usage; a failure
        after the first delta is raised by the rest, after the reply was kept."""
        deltas = self._answer(call).__aiter__()
        try:
            with calling(call.context()):
                first = await anext(deltas)
        except BaseException:
            await deltas.aclose()
            raise
        return Started(first, deltas)

    async def complete(self, call: CompletionCall) -> Completion:
        """The whole answer."""
        answer = self._answer(call)
        with calling(call.context()):
            async for _ in answer:
                pass
        logprobs = answer.logprobs if call.request.logprobs else None
        return Completion(answer.text, answer.tool_calls, answer.finish, answer.usage(), logprobs)

    async def _save(self, call: CompletionCall, answer: Answer) -> None:
        """Keep the reply when a conversation asked."""
        text = answer.text
        if call.conversation_id is None or not text:
            return
        reply = Message(
            role="assistant",
            author="assistant",
            content=text,
            model=call.model,
            status=MessageStatus.COMPLETE if answer.complete else MessageStatus.PARTIAL,
            usage=answer.usage(),
            completed_at=utcnow(),
        )
        try:
            await self.conversations.repo.add_message(call.conversation_id, reply)
        except Exception as exc:  # the client has its answer; the response still ends well
            logger.error("could not save a reply of %s: %s", call.conversation_id, summary(exc))

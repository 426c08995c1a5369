"""Conversations: one person, one model at a time, and the replies streamed to them.

A reply is generated in a task owned by this service (never by the HTTP connection) and
streamed into an event log named after the user message it answers, so a client that
drops can resume with `Last-Event-ID` exactly as for runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from symposia.aio import complete
from symposia.domain.event_types import (
    Reply,
    ReplyDone,
    ReplyOutcome,
    StreamError,
    TurnComplete,
    TurnStart,
    emit,
)
from symposia.domain.models import Conversation, Message, MessageStatus
from symposia.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
)
from symposia.events.log import EventLog
from symposia.orchestration.context import fit
from symposia.orchestration.generation import (
    Generation,
    GenerationFailedError,
    Models,
    prompt_chars,
)
from symposia.providers.base import ChatMessage
from symposia.services.models import ModelCatalog
from symposia.storage.failures import log_failure, summary
from symposia.storage.sql_conversations import SqlConversationRepository

logger = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.7
LOCAL_PROVIDERS = frozenset({"local", "scripted"})
NOTHING_TO_ANSWER = (
    "the last message of this conversation is not from the user: "
    "add one with POST /api/conversations/{id}/messages first"
)
REPLY_NOT_SAVED = {
    "code": "storage_error",
    "message": "the reply could not be saved; it is not in the conversation",
}


@dataclass(frozen=True, slots=True)
class ChatLimits:
    default_model: str
    max_message_chars: int
    max_tokens: int
    context_budget: int


@dataclass(slots=True)
class _Reply:
    task: asyncio.Task[None]
    stream_id: str
    deleted: bool = False


@dataclass(slots=True)
class ConversationService:
    repo: SqlConversationRepository
    log: EventLog
    models: Models
    catalog: ModelCatalog
    limits: ChatLimits
    _replies: dict[str, _Reply] = field(default_factory=dict)
    _latest_stream: dict[str, str] = field(default_factory=dict)

    async def check_model(self, full_name: str, field_name: str = "model") -> None:
        provider, model = self.models.registry.resolve(full_name, field=field_name)
        if provider.name not in LOCAL_PROVIDERS:
            await self.catalog.check(provider, model, field_name)

    def check_text(self, text: str) -> None:
        if len(text) > self.limits.max_message_chars:
            raise PayloadTooLargeError(
                f"message is {len(text)} characters; the limit is "
                f"{self.limits.max_message_chars} (MAX_MESSAGE_CHARS)"
            )

    async def create(
        self,
        title: str | None = None,
        default_model: str | None = None,
        system_prompt: str | None = None,
        *,
        owner: str | None,
    ) -> Conversation:
        model = default_model or self.limits.default_model
        await self.check_model(model, "default_model")
        conversation = Conversation(
            default_model=model, title=title, system_prompt=system_prompt, owner=owner
        )
        await self.repo.add(conversation)
        return conversation

    async def discard(self, conversation_id: str) -> None:
        """Remove a conversation a request created before failing: a failed request writes
        nothing. Best effort: the database may be what failed."""
        try:
            await self.repo.delete(conversation_id)
        except Exception as exc:
            logger.error("could not discard conversation %s: %s", conversation_id, summary(exc))

    async def get(self, conversation_id: str, *, owner: str | None) -> Conversation:
        """Another principal's conversation is "not found", never "forbidden"."""
        conversation = await self.repo.get(conversation_id)
        if conversation is None or (owner is not None and conversation.owner != owner):
            raise NotFoundError(f"conversation {conversation_id!r} not found")
        return conversation

    async def page(self, limit: int, offset: int, *, owner: str | None) -> list[Conversation]:
        return await self.repo.page(limit=limit, offset=offset, owner=owner)

    async def update(
        self, conversation_id: str, changes: dict[str, Any], *, owner: str | None
    ) -> Conversation:
        await self.get(conversation_id, owner=owner)
        if "default_model" in changes:
            await self.check_model(changes["default_model"], "default_model")
        await self.repo.update(conversation_id, changes)
        return await self.get(conversation_id, owner=owner)

    async def delete(self, conversation_id: str, *, owner: str | None) -> None:
        await self.get(conversation_id, owner=owner)
        reply = self._replies.get(conversation_id)
        if reply is not None:  # cancel the reply being streamed, cleanly, before deleting
            reply.deleted = True
            reply.task.cancel()
            await asyncio.wait({reply.task}, timeout=5)
        await self.repo.delete(conversation_id)
        self._latest_stream.pop(conversation_id, None)

    async def add_user_message(
        self,
        conversation_id: str,
        text: str,
        model: str | None = None,
        *,
        owner: str | None,
    ) -> Message:
        self.check_text(text)
        await self.get(conversation_id, owner=owner)
        if model is not None:
            await self.check_model(model)
        # `model` on a user message is the model asked to answer it.
        message = Message(role="user", author="user", content=text, model=model)
        await self.repo.add_message(conversation_id, message)
        return message

    async def messages(
        self, conversation_id: str, limit: int, offset: int, *, owner: str | None
    ) -> list[Message]:
        await self.get(conversation_id, owner=owner)
        return await self.repo.messages(conversation_id, limit=limit, offset=offset)

    async def conversation_of_message(self, message_id: str, *, owner: str | None) -> str:
        conversation_id = await self.repo.conversation_of_message(message_id)
        missing = NotFoundError(f"message {message_id!r} not found in any conversation")
        if conversation_id is None:
            raise missing
        try:
            await self.get(conversation_id, owner=owner)
        except NotFoundError:
            raise missing from None
        return conversation_id

    async def reply_stream(
        self,
        conversation_id: str,
        model: str | None = None,
        resuming: bool = False,
        *,
        owner: str | None,
    ) -> str:
        """The stream of the reply to the latest user message, started if need be.

        Joining a reply that is on its way costs one small query, however many join."""
        target = await self.repo.reply_target(conversation_id)
        if target is None or (owner is not None and target.owner != owner):
            raise NotFoundError(f"conversation {conversation_id!r} not found")
        if target.last_role == "user":
            stream_id = f"reply-{target.last_message_id}"
            if await self.log.exists(stream_id):
                return stream_id
            return await self._start_reply(conversation_id, model, owner=owner)
        latest = self._latest_stream.get(conversation_id)
        if resuming and latest is not None and await self.log.exists(latest):
            return latest
        raise ConflictError(NOTHING_TO_ANSWER)

    async def _start_reply(
        self, conversation_id: str, model: str | None, *, owner: str | None
    ) -> str:
        conversation = await self.get(conversation_id, owner=owner)
        last = await self.repo.last_message(conversation_id)
        if last is None or last.role != "user":  # answered while this request was reading
            raise ConflictError(NOTHING_TO_ANSWER)
        stream_id = f"reply-{last.id}"
        if model is not None:
            await self.check_model(model)
        chosen = model or last.model or conversation.default_model
        await self._start(conversation, last, chosen, stream_id)
        return stream_id

    async def _start(
        self, conversation: Conversation, question: Message, model: str, stream_id: str
    ) -> None:
        if await self.log.exists(stream_id):
            return  # another request started it while this one read the conversation
        await self.log.create(stream_id)
        self._latest_stream[conversation.id] = stream_id
        task = asyncio.create_task(
            self._reply(conversation, question, model, stream_id), name=f"reply-{conversation.id}"
        )
        self._replies[conversation.id] = _Reply(task, stream_id)
        task.add_done_callback(functools.partial(self._forget, conversation.id))

    def _forget(self, conversation_id: str, task: asyncio.Task[None]) -> None:
        self._replies.pop(conversation_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log_failure(logger, "reply task failed", exc)

    async def _history(self, conversation: Conversation) -> list[ChatMessage]:
        messages = (
            [ChatMessage("system", conversation.system_prompt)]
            if (conversation.system_prompt)
            else []
        )
        for message in await self.repo.messages(conversation.id):
            if message.content:
                messages.append(ChatMessage(message.role, message.content))
        return fit(messages, self.limits.context_budget - self.limits.max_tokens)

    async def _reply(
        self, conversation: Conversation, question: Message, model: str, stream_id: str
    ) -> None:
        outcome: ReplyOutcome
        reply = Message(role="assistant", author="assistant", content="", model=model)
        speaker = Reply(conversation.id, question.id, reply.author)
        started = await emit(self.log, stream_id, TurnStart(speaker, model))
        reply.start_event = started.seq
        generation = Generation(self.models, self.log, stream_id, speaker)
        status, outcome = MessageStatus.PARTIAL, "cancelled"
        history: list[ChatMessage] = []
        try:
            history = await self._history(conversation)
            await generation.stream([model], history, DEFAULT_TEMPERATURE, self.limits.max_tokens)
            status, outcome = MessageStatus.COMPLETE, "completed"
        except GenerationFailedError as exc:
            outcome = "error"
            await emit(self.log, stream_id, StreamError(exc.failure.to_dict()))
        finally:
            generation.finish(reply, status, prompt_chars(history))
            await complete(self._record(speaker, reply, stream_id, outcome))

    async def _record(
        self, speaker: Reply, reply: Message, stream_id: str, outcome: ReplyOutcome
    ) -> None:
        """Save the reply, then end its stream. This task is the stream's only writer, so
        the `turn_complete` about to be sent is the next id, stored with the reply."""
        conversation_id = speaker.conversation_id
        active = self._replies.get(conversation_id)
        saved = unsaved = False
        if reply.content and not (active is not None and active.deleted):
            try:
                reply.complete_event = await self.log.last_seq(stream_id) + 1
                await self.repo.add_message(conversation_id, reply)
                saved = True
            except Exception as exc:  # the stream must still end, and say so
                logger.error("could not save a reply of %s: %s", conversation_id, summary(exc))
                unsaved = True
        await emit(self.log, stream_id, TurnComplete(speaker, reply, saved=saved))
        if unsaved:
            outcome = "error"
            await emit(self.log, stream_id, StreamError(REPLY_NOT_SAVED))
        message_id = reply.id if saved else None
        await emit(self.log, stream_id, ReplyDone(conversation_id, outcome, message_id))
        await self.log.close(stream_id)

    async def shutdown(self, grace: float) -> None:
        tasks = [reply.task for reply in self._replies.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, timeout=grace)

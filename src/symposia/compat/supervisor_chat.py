"""The supervisor chat's `POST /api/chat/stream` (docs/seeds.md, "Supervisor chat").

Its body is `{"message", "conversation_id", "user_id", "history"}`: the client names the
conversation (one this server has not seen yet is created under that id, its `history`
stored first), and its stream is unnamed `data:` frames of four chunk types, `token`,
`tool_call`, `complete` and `error`. This module only translates: the question is asked
and answered by `ConversationService`, the frames are the reply's own events.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from sse_starlette import ServerSentEvent

from symposia.api.schemas import ChatStreamRequest
from symposia.domain.events import Event
from symposia.domain.models import Message
from symposia.errors import InvalidInputError, NotFoundError
from symposia.services.conversations import ConversationService
from symposia.streaming.sse import SEP, wire_data

SEED_FIELDS = frozenset({"user_id", "history"})
# A client-chosen conversation id: what a URL path and the id column (32) take.
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,32}")


def is_seed_request(body: ChatStreamRequest) -> bool:
    """The request is in the supervisor chat's form: it names `user_id` or `history`."""
    return bool(SEED_FIELDS & body.model_fields_set)


async def conversation_for(
    body: ChatStreamRequest, conversations: ConversationService, owner: str
) -> tuple[str, bool]:
    """The conversation the question goes to, and whether this request created it: the
    caller's `conversation_id`, created under that id (with `history`) when unknown, or
    a new one (with `history`) when none is named."""
    history = [
        Message(role=item.role, author=item.role, content=item.content)
        for item in body.history or ()
    ]
    wanted = body.conversation_id
    if wanted is not None:
        try:
            found = await conversations.get(wanted, owner=None)
        except NotFoundError:
            found = None
        if found is not None:  # another principal's is not found, as everywhere
            return (await conversations.get(wanted, owner=owner)).id, False
        if CLIENT_ID.fullmatch(wanted) is None:
            raise InvalidInputError(
                "a new conversation_id is 1 to 32 letters, digits or `_.:-`", "conversation_id"
            )
    conversation = await conversations.create(owner=owner, conversation_id=wanted)
    try:
        await conversations.add_history(conversation.id, history)
    except BaseException:
        await conversations.discard(conversation.id)
        raise
    return conversation.id, True


def _frame(event: Event, data: dict[str, Any]) -> bytes:
    return ServerSentEvent(data=orjson.dumps(data).decode(), id=str(event.seq), sep=SEP).encode()


def chunk(event: Event) -> bytes:
    """A reply's event as the supervisor chat's chunk (b"" for the events it has no
    chunk for: `turn_start`, `routing`, `done`). Each chunk is the event's own data,
    typed: `token` also carries its text as `content`; `complete` is the saved answer
    (the `turn_complete`: `content`, `message_id`, `conversation_id`, `usage`)."""
    data = wire_data(event)
    if event.type == "token":
        return _frame(event, {**data, "content": data["delta"]})
    if event.type in ("tool_call", "error"):
        return _frame(event, data)
    if event.type == "turn_complete" and data.get("status") != "error":
        return _frame(event, {**data, "type": "complete"})
    return b""

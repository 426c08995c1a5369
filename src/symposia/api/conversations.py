"""Conversations: one person, one model at a time; replies streamed over SSE."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from symposia.api.deps import (
    ContainerDep,
    ConversationsDep,
    EventsFormDep,
    IdempotencyKeyDep,
    PrincipalDep,
    get_principal,
    rate_limited,
    stream_slot,
)
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.api.schemas import (
    ConversationCreate,
    ConversationPatch,
    IdPrefix,
    MessageCreate,
    ModelName,
    PageLimit,
    PageOffset,
    RegenerateBody,
    tool_body,
)
from symposia.api.views import conversation_view
from symposia.domain.models import ReplyRecord
from symposia.errors import InvalidInputError
from symposia.security.principals import Principal
from symposia.services.agent_tools import conversation_tools
from symposia.services.conversations import ConversationService
from symposia.services.idempotency import Outcome
from symposia.streaming.sse import (
    encoder_named,
    finished_before,
    parse_last_event_id,
    resume_position,
)

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api/conversations",
    tags=["conversations"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 422, 503),
)


@router.post("", status_code=201, responses=api_errors(400, 413))
async def create_conversation(
    body: ConversationCreate,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> dict[str, Any]:
    """With a `panel`, each user message is routed by the supervisor (`default_model`) to
    one of its agents, or answered by the supervisor; the reply's stream starts with a
    `routing` event saying who answers and why."""
    panel = body.panel.to_panel() if body.panel is not None else None
    conversation_tools(container.tools, container.providers, principal, body.tools, panel)
    conversation = await conversations.create(
        body.title,
        body.default_model,
        body.system_prompt,
        owner=principal.id,
        panel=panel,
        tools=[tool_body(t) for t in body.tools] if body.tools else None,
    )
    return conversation_view(conversation)


@router.get("")
async def list_conversations(
    conversations: ConversationsDep,
    principal: PrincipalDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
    id_prefix: IdPrefix = None,
) -> dict[str, Any]:
    """Your conversations, most recently active first; with `id_prefix`, only those whose
    id starts so (echoed in the answer)."""
    prefix = id_prefix or ""
    items = await conversations.page(limit, offset, owner=principal.id, id_prefix=prefix)
    page = {"items": [conversation_view(c) for c in items], "limit": limit, "offset": offset}
    return {**page, "id_prefix": id_prefix} if id_prefix else page


@router.get("/{conversation_id}", responses=api_errors(404))
async def get_conversation(
    conversation_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The conversation with its `messages` (all of them, oldest first), as the
    supervisor chat's clients read it; `/messages` pages them."""
    conversation = await conversations.get(conversation_id, owner=principal.id)
    messages = await conversations.messages(conversation_id, None, 0, owner=principal.id)
    return {**conversation_view(conversation), "messages": [m.to_dict() for m in messages]}


@router.patch("/{conversation_id}", responses=api_errors(400, 404, 413))
async def update_conversation(
    conversation_id: str,
    body: ConversationPatch,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> dict[str, Any]:
    changes = body.changes()
    conversation_tools(
        container.tools, container.providers, principal, changes.get("tools"), changes.get("panel")
    )
    if not changes:
        raise InvalidInputError(
            "nothing to change: send title, default_model, system_prompt, panel or tools",
            "body",
        )
    return conversation_view(
        await conversations.update(conversation_id, changes, owner=principal.id)
    )


@router.delete("/{conversation_id}", status_code=204, responses=api_errors(404))
async def delete_conversation(
    conversation_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> Response:
    """Deletes the conversation and its messages; a reply being streamed is cancelled."""
    await conversations.delete(conversation_id, owner=principal.id)
    return Response(status_code=204)


@router.post(
    "/{conversation_id}/messages",
    status_code=201,
    dependencies=[rate_limited("chat")],
    responses=api_errors(400, 404, 409, 413, 429),
)
async def add_message(
    conversation_id: str,
    body: MessageCreate,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    container: ContainerDep,
    http: Request,
    idempotency_key: IdempotencyKeyDep = None,
) -> Response:
    """Adds a user message; `model` overrides the conversation's default for the reply.
    409 `reply_in_progress` while a reply of the conversation is being generated. With
    `Idempotency-Key`, a retry answers the message the first request added."""

    async def add() -> Outcome:
        return 201, await add_user_message(conversation_id, body, conversations, principal)

    given = body.model_dump(mode="json", exclude_unset=True)
    answer = await container.idempotency.answer(
        idempotency_key, principal.id, http.url.path, given, add
    )
    return JSONResponse(answer.body, answer.status, answer.headers)


async def add_user_message(
    conversation_id: str,
    body: MessageCreate,
    conversations: ConversationService,
    principal: Principal,
) -> dict[str, Any]:
    """The message added, as the API shows it (also the WebSocket's `chat` command)."""
    message = await conversations.add_user_message(
        conversation_id,
        body.message,
        body.model,
        owner=principal.id,
        tool_call_id=body.tool_call_id,
    )
    return message.to_dict()


@router.post("/{conversation_id}/stop", responses=api_errors(404, 409))
async def stop_reply(
    conversation_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Stops the reply being generated, from any server process: the model call is
    cancelled, the text so far kept as a `partial` message, and the reply's stream ends
    with `done` (`cancelled`). 409 when no reply is being generated."""
    reply = await conversations.stop(conversation_id, owner=principal.id)
    return stopped_view(reply)


def stopped_view(reply: ReplyRecord) -> dict[str, Any]:
    """A stopped reply as the API shows it (also the WebSocket's `stop` command)."""
    return {
        "conversation_id": reply.conversation_id,
        "reply_id": reply.id,
        "status": reply.status.value,
        "message": reply.message.to_dict() if reply.message is not None else None,
    }


@router.post(
    "/{conversation_id}/regenerate",
    status_code=201,
    dependencies=[rate_limited("chat")],
    responses=api_errors(400, 404, 409, 413, 429),
)
async def regenerate(
    conversation_id: str,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    body: RegenerateBody | None = None,
) -> dict[str, Any]:
    """Asks the last question again: it is put back as a new message (its earlier answers
    in its `alternatives`), and `GET .../stream` then generates the new answer. 409 while
    a reply is being generated, or when the conversation does not end with a question and
    its answer."""
    model = body.model if body is not None else None
    question = await conversations.regenerate(conversation_id, model, owner=principal.id)
    return question.to_dict()


@router.post("/{conversation_id}/alternatives/{message_id}", responses=api_errors(404, 409))
async def choose_alternative(
    conversation_id: str, message_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Shows the last question's earlier answer `message_id` (one of its `alternatives`)
    as its answer; the answer shown until now becomes an alternative."""
    answer = await conversations.choose(conversation_id, message_id, owner=principal.id)
    return answer.to_dict()


@router.get("/{conversation_id}/messages", responses=api_errors(404))
async def list_messages(
    conversation_id: str,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    messages = await conversations.messages(conversation_id, limit, offset, owner=principal.id)
    return {"items": [m.to_dict() for m in messages], "limit": limit, "offset": offset}


@router.get(
    "/{conversation_id}/stream",
    response_class=EventSourceResponse,
    dependencies=[rate_limited("chat")],
    responses=api_errors(400, 404, 409, 429),
)
async def stream_reply(
    request: Request,
    conversation_id: str,
    container: ContainerDep,
    principal: PrincipalDep,
    model: Annotated[ModelName | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="last_event_id")] = None,
    events: EventsFormDep = "named",
) -> Response:
    """The assistant's reply to the latest user message, saved when complete; the final
    `done` event carries the new message's id. A reply already on its way is joined, from
    any server process. Resumable with `Last-Event-ID`, also once answered; 204 when that
    id is at or past the reply's `done`."""
    after = parse_last_event_id(last_event_id, last_event_id_query)
    stream_id, stored = await container.conversations.reply_stream(
        conversation_id, model, resuming=after > 0, owner=principal.id
    )
    if await finished_before(stored, container.log, stream_id, after):
        return Response(status_code=204)  # a finished reply's reconnection: stop
    after = await resume_position(stored, container.log, stream_id, after)
    return container.stream_response(
        stream_id, after, stored, stream_slot(request, container, principal), encoder_named(events)
    )

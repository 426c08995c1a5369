"""One call to chat: send a message, get the reply streamed, chain with `previous_response_id`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sse_starlette import EventSourceResponse

from symposia.api.deps import (
    ContainerDep,
    EventsFormDep,
    IdempotencyKeyDep,
    PrincipalDep,
    get_principal,
    rate_limited,
    stream_slot,
)
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.api.schemas import ChatStreamRequest
from symposia.compat import supervisor_chat
from symposia.errors import InvalidInputError
from symposia.services.conversations import ConversationService
from symposia.services.idempotency import Outcome
from symposia.streaming.sse import Encoder, encoder_named
from symposia.streaming.stream_slots import Release

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api/chat",
    tags=["chat"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 422, 503),
)


@router.post(
    "/stream",
    response_class=EventSourceResponse,
    dependencies=[rate_limited("chat")],
    responses=api_errors(400, 404, 409, 413, 429),
)
async def chat_stream(
    body: ChatStreamRequest,
    container: ContainerDep,
    principal: PrincipalDep,
    http: Request,
    idempotency_key: IdempotencyKeyDep = None,
    events: EventsFormDep = "named",
) -> Response:
    """Continues `conversation_id`, or the conversation holding `previous_response_id`, or
    starts a new one. The final `done` event carries `response_id` (the reply's message
    id, the next call's `previous_response_id`) and `conversation_id`. 409
    `reply_in_progress` while the conversation's previous reply is still being generated.
    With `Idempotency-Key`, a retry gets the stream the first request started, from its
    start (joined while it goes on), and starts nothing. A body with `user_id` or
    `history` is the supervisor chat's (docs/seeds.md): its conversation_id may be new,
    and its stream is that system's unnamed chunks."""
    encoder = encoder_named(events)
    if supervisor_chat.is_seed_request(body):
        if not container.settings.compat_supervisor_chat:
            raise InvalidInputError(
                "user_id and history are the supervisor chat's fields, turned off on this "
                "server (COMPAT_SUPERVISOR_CHAT=false)",
                "body",
            )
        encoder = supervisor_chat.chunk
    release = stream_slot(http, container, principal)  # before a reply is started
    try:
        return await _answer(body, container, principal.id, http, idempotency_key, release, encoder)
    except BaseException:
        release()
        raise


async def _answer(
    body: ChatStreamRequest,
    container: ContainerDep,
    owner: str,
    http: Request,
    idempotency_key: str | None,
    release: Release,
    encoder: Encoder,
) -> Response:
    async def ask() -> Outcome:
        stream_id = await _ask(body, container.conversations, owner)
        return 200, {"stream_id": stream_id}

    given = body.model_dump(mode="json", exclude_unset=True)
    answer = await container.idempotency.answer(idempotency_key, owner, http.url.path, given, ask)
    stream_id = str(answer.body["stream_id"])
    if not answer.replayed:
        return container.stream_response(stream_id, 0, release=release, encoder=encoder)
    _, stored = await container.conversations.open_reply(stream_id.removeprefix("reply-"))
    response = container.stream_response(stream_id, 0, stored, release=release, encoder=encoder)
    response.headers.update(answer.headers)
    return response


async def _ask(body: ChatStreamRequest, conversations: ConversationService, owner: str) -> str:
    """Ask the question in its conversation (a new one if need be); the reply's stream."""
    conversations.check_text(body.message)
    created = False
    if supervisor_chat.is_seed_request(body):
        conversation_id, created = await supervisor_chat.conversation_for(
            body, conversations, owner
        )
    elif body.conversation_id is not None:
        conversation_id = (await conversations.get(body.conversation_id, owner=owner)).id
    elif body.previous_response_id is not None:
        conversation_id = await conversations.conversation_of_message(
            body.previous_response_id, owner=owner
        )
    else:
        panel = body.panel.to_panel() if body.panel is not None else None
        conversation_id = (
            await conversations.create(default_model=body.model, owner=owner, panel=panel)
        ).id
        created = True
    # A new panel's `model` is its supervisor, not a per-message override.
    override = None if body.panel is not None else body.model
    try:
        return await conversations.ask(conversation_id, body.message, override, owner=owner)
    except BaseException:
        if created:  # a failed request leaves no empty conversation behind
            await conversations.discard(conversation_id)
        raise

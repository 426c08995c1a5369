"""The OpenRouter chat server's API at the root (docs/seeds.md, "OpenRouter conversations").

Its routes are `/models`, `/conversations`, `/conversations/{id}`, `.../messages` and
`.../stream`, with its own shapes: lists as `{"conversations"}` and `{"conversation_id",
"messages"}`, messages with `timestamp`, a stream of unnamed `data: {"content"}` frames
ending `data: {"done": true, "message_id"}`, and 400 (bad input) and 502 (the model's
provider failed before answering) where it answered them. Every request goes to the same
`ConversationService` and `ModelCatalog` as `/api/...`; this module only reshapes. Bodies
and errors also carry Symposia's own fields (`code`, `message`, `created_at`, ...).
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from symposia.api.deps import (
    ContainerDep,
    ConversationsDep,
    PrincipalDep,
    get_principal,
    rate_limited,
    stream_slot,
)
from symposia.api.errors import validation_body
from symposia.api.json_bodies import BoundedJsonRoute, Handler
from symposia.api.schemas import MessageText, ModelName
from symposia.api.views import conversation_view
from symposia.container import Container
from symposia.domain.events import Event
from symposia.domain.models import Message
from symposia.errors import InvalidInputError, SymposiaError
from symposia.storage.stats import counts

SERVICE = "Symposia"
MAX_LISTED = 200  # conversations `GET /conversations` lists, most recently active first


class SeedRoute(BoundedJsonRoute):
    """The seed's error statuses: bad input is a 400 (not 422), and every error body also
    has FastAPI's `detail`, which the seed's clients read."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def seed_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                body = validation_body(exc)
                return JSONResponse({**body, "detail": body["message"]}, status_code=400)
            except SymposiaError as exc:
                status = 400 if isinstance(exc, InvalidInputError) else exc.status_code
                body = {**exc.to_dict(), "detail": exc.message}
                return JSONResponse(body, status_code=status, headers=exc.headers)

        return seed_errors


router = APIRouter(
    route_class=SeedRoute,
    tags=["seed: openrouter conversations"],
    include_in_schema=False,  # the seed's API, documented in docs/seeds.md, not ours
    dependencies=[Depends(get_principal)],
)


class SeedConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_model: ModelName | None = None


class SeedConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_model: ModelName


class SeedMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: MessageText
    model: ModelName | None = None


def message_view(message: Message) -> dict[str, Any]:
    """A message as the seed shows it (`timestamp`), with Symposia's fields."""
    return {**message.to_dict(), "timestamp": message.created_at.isoformat()}


async def status_body(container: Container, owner: str | None) -> dict[str, Any]:
    """`GET /` for JSON clients: the seed's `status: "online"`, `service`,
    `conversations` and `total_messages` (the caller's own; 0 for who may not list)."""
    body: dict[str, Any] = {"name": SERVICE, "status": "online", "service": SERVICE}
    body["version"] = container.settings.reported_version
    mine = await counts(container.engine, owner) if owner is not None else None
    body["conversations"] = mine["conversations"] if mine else 0
    body["total_messages"] = mine["messages"] if mine else 0
    if mine is not None:
        body["counts"] = mine
    return body


@router.get("/models")
async def list_models(container: ContainerDep) -> dict[str, Any]:
    """The models this server can use; `cached` when the listing came from the cache
    (MODELS_CACHE_SECONDS, an hour by default, as the seed)."""
    cached = container.models.cached()
    listing = await container.models.listing()
    models = [{**m, "name": m["id"]} for m in listing["models"]]
    return {"models": models, "cached": cached, "providers": listing["providers"]}


@router.post("/conversations")
async def create_conversation(
    body: SeedConversationCreate, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    conversation = await conversations.create(default_model=body.default_model, owner=principal.id)
    return conversation_view(conversation)


@router.get("/conversations")
async def list_conversations(
    conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The caller's conversations, most recently active first (the latest 200)."""
    items = await conversations.page(MAX_LISTED, 0, owner=principal.id)
    return {"conversations": [conversation_view(c) for c in items]}


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    return conversation_view(await conversations.get(conversation_id, owner=principal.id))


@router.patch("/conversations/{conversation_id}")
async def update_conversation(
    conversation_id: str,
    body: SeedConversationPatch,
    conversations: ConversationsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    changes = {"default_model": body.default_model}
    return conversation_view(
        await conversations.update(conversation_id, changes, owner=principal.id)
    )


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(
    conversation_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    await conversations.delete(conversation_id, owner=principal.id)
    return {"message": "Conversation deleted", "id": conversation_id}


@router.post("/conversations/{conversation_id}/messages", dependencies=[rate_limited("chat")])
async def add_message(
    conversation_id: str,
    body: SeedMessageCreate,
    conversations: ConversationsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Stores the user's message; `GET .../stream` streams the answer (`model` overrides
    the conversation's default for it)."""
    message = await conversations.add_user_message(
        conversation_id, body.message, body.model, owner=principal.id
    )
    return message_view(message)


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: str, conversations: ConversationsDep, principal: PrincipalDep
) -> dict[str, Any]:
    messages = await conversations.messages(conversation_id, None, 0, owner=principal.id)
    return {"conversation_id": conversation_id, "messages": [message_view(m) for m in messages]}


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def seed_frame(event: Event) -> bytes:
    """A reply's event as the seed's frame: `{"content"}` per token, `{"done": true,
    "message_id"}` at the end, `{"error"}` for a failure once text had come."""
    if event.type == "token":
        return _data({"content": event.data["delta"]})
    if event.type == "error":
        return _data({"error": event.data.get("message", "the model failed")})
    if event.type == "done":
        return _data({"done": True, "message_id": event.data.get("message_id")})
    return b""


async def _first_failure(source: Any, stream_id: str) -> dict[str, Any] | None:
    """The reply's error when it failed before its first token (the seed's 502)."""
    async with aclosing(source.batches(stream_id, 0)) as batches:
        async for batch in batches:
            for event in batch:
                if event.type == "error":
                    failure: dict[str, Any] = event.data
                    return failure
                if event.type in ("token", "tool_call", "turn_complete", "done"):
                    return None
    return None


@router.get("/conversations/{conversation_id}/stream", dependencies=[rate_limited("chat")])
async def stream_reply(
    request: Request,
    conversation_id: str,
    container: ContainerDep,
    principal: PrincipalDep,
    model: Annotated[ModelName | None, Query()] = None,
) -> Response:
    """The answer to the latest user message, as the seed streams it; 502 with the
    provider's error when the model failed before its first token."""
    stream_id, stored = await container.conversations.reply_stream(
        conversation_id, model, owner=principal.id
    )
    release = stream_slot(request, container, principal)
    try:
        failure = await _first_failure(stored or container.log, stream_id)
    except BaseException:
        release()
        raise
    if failure is not None:
        release()
        message = str(failure.get("message", "the model's provider failed"))
        return JSONResponse({**failure, "detail": message}, status_code=502)
    return container.stream_response(stream_id, 0, stored, release=release, encoder=seed_frame)

"""OpenAI-compatible endpoints: any OpenAI client can use Symposia as its base URL.

Served at `/v1/...` and `/api/v1/...`. Authentication is a Symposia API key as
`Authorization: Bearer`; rate limits and metrics are those of the rest of the API.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute

from symposia.api.deps import (
    Caller,
    ContainerDep,
    get_principal,
    rate_limited_caller,
)
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.lean_route import LeanRoute
from symposia.api.openai_schemas import ChatCompletionBody
from symposia.api.responses import json_or_stream, openai_errors
from symposia.container import Container
from symposia.errors import InvalidInputError
from symposia.streaming.openai_chunks import ChunkEncoder, completion_object, encode_stream
from symposia.streaming.relay_response import RelayResponse
from symposia.streaming.request_scope import ClientGoneError, RequestScope

CONVERSATION_HEADER = "X-Symposia-Conversation"
MODEL_CREATED = 1_700_000_000  # listings have no creation time; a fixed, plausible one
# nginx's status for a request its client gave up on: only logs and metrics see it.
CLIENT_CLOSED_REQUEST = 499


def request_scope(request: Request, container: Container) -> RequestScope:
    """The request's scope, open from now (its body has been read). The handler closes
    it, unless it answers with a `RelayResponse`, which closes it when the stream ends.

    Not a FastAPI dependency with `yield`: on the hot path, that one dependency's exit
    stack cost more than the scope itself."""
    return container.request_scopes.open(request.receive)


def _model_object(entry: dict[str, str]) -> dict[str, Any]:
    return {
        "id": entry["id"],
        "object": "model",
        "created": MODEL_CREATED,
        "owned_by": entry["provider"],
    }


def _router(prefix: str) -> APIRouter:
    router = APIRouter(route_class=BoundedJsonRoute, prefix=prefix, tags=["openai"])

    async def chat_completions(
        body: ChatCompletionBody,
        caller: Annotated[Caller, rate_limited_caller("chat")],
        http: Request,
        conversation: Annotated[
            str | None, Header(alias=CONVERSATION_HEADER, max_length=64)
        ] = None,
    ) -> Response:
        """OpenAI's chat completions, for every Symposia model (`openai/...`,
        `anthropic/...`, `local/smollm2`, ...). `X-Symposia-Conversation: <id>` (or `new`)
        also keeps the exchange in that conversation. A client that leaves cancels the
        model call at once, whatever its phase (before the first token, in a retry's wait,
        streamed or not)."""
        container, principal = caller.container, caller.principal
        try:
            request = body.completion_request()
        except ValueError as exc:
            raise InvalidInputError(str(exc), "messages") from None
        call = await container.completions.prepare(
            body.model, request, owner=principal.id, conversation=conversation
        )
        headers = {CONVERSATION_HEADER: call.conversation_id} if call.conversation_id else {}
        completion_id, created = f"chatcmpl-{os.urandom(12).hex()}", int(time.time())
        scope, relay = request_scope(http, container), None
        try:
            with scope:
                if not body.stream:
                    done = await container.completions.complete(call)
                    answer = completion_object(
                        completion_id=completion_id,
                        created=created,
                        model=body.model,
                        text=done.text,
                        tool_calls=done.tool_calls,
                        finish_reason=done.finish_reason,
                        usage=done.usage,
                        legacy=body.legacy,
                        logprobs=done.logprobs,
                    )
                    return JSONResponse(answer, headers=headers)
                started = await container.completions.start(call)
            encoder = ChunkEncoder(
                completion_id, created, body.model, body.include_usage, legacy=body.legacy
            )
            stream = encode_stream(started.first, started.rest, encoder, body.include_usage)
            relay = RelayResponse(stream, scope, headers, container.settings.sse_send_timeout)
            return relay
        except ClientGoneError:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        finally:
            if relay is None:
                scope.close()

    # The hot path: served by `LeanRoute`, which solves this signature itself.
    router.add_api_route(
        "/chat/completions",
        chat_completions,
        methods=["POST"],
        responses={
            **json_or_stream(
                "A `chat.completion`, or with `stream: true` its `chat.completion.chunk` events"
            ),
            **openai_errors(400, 401, 404, 409, 413, 429, 502, 503, 504),
        },
        route_class_override=LeanRoute,
    )

    @router.get("/models", dependencies=[Depends(get_principal)], responses=openai_errors(401, 503))
    async def list_models(container: ContainerDep) -> dict[str, Any]:
        """OpenAI's model list, from every configured provider's discovery."""
        listing = await container.models.listing()
        return {"object": "list", "data": [_model_object(m) for m in listing["models"]]}

    @router.get(
        "/models/{model:path}",
        dependencies=[Depends(get_principal)],
        responses=openai_errors(401, 404, 503),
    )
    async def retrieve_model(model: str, container: ContainerDep) -> dict[str, Any]:
        """OpenAI's model object for one model (ids hold a slash: `local/smollm2`); a
        404 `model_not_found` for a model this server cannot use."""
        return _model_object(await container.models.find(model))

    return router


routers = [_router("/v1"), _router("/api/v1")]


def hot_routes() -> list[BaseRoute]:
    """The routes served ahead of the app's full middleware stack (`api/hot_path`)."""
    return [route for router in routers for route in router.routes if isinstance(route, LeanRoute)]

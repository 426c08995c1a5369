"""OpenAI's Responses API: `POST /v1/responses` (streamed with its typed events, or not),
`GET` and `DELETE /v1/responses/{id}`; also under `/api/v1`. Chaining with
`previous_response_id` is kept by Symposia, so it works for every model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from symposia.api.deps import (
    Caller,
    ContainerDep,
    IdempotencyKeyDep,
    PrincipalDep,
    get_principal,
    rate_limited_caller,
)
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.openai_compat import CLIENT_CLOSED_REQUEST, request_scope
from symposia.api.responses import json_or_stream, openai_errors
from symposia.api.responses_schemas import ResponsesBody
from symposia.services.idempotency import Outcome
from symposia.streaming.relay_response import RelayResponse
from symposia.streaming.request_scope import ClientGoneError
from symposia.streaming.responses_events import ResponseEncoder, replayed


def _router(prefix: str) -> APIRouter:
    router = APIRouter(route_class=BoundedJsonRoute, prefix=prefix, tags=["openai"])

    @router.post(
        "/responses",
        responses={
            **json_or_stream("A Response, or with `stream: true` its typed events"),
            **openai_errors(400, 401, 404, 413, 429, 502, 503, 504),
        },
    )
    async def create_response(
        body: ResponsesBody,
        caller: Annotated[Caller, rate_limited_caller("chat")],
        http: Request,
        idempotency_key: IdempotencyKeyDep = None,
    ) -> Response:
        """OpenAI's Responses API for every Symposia model: `input` as text or message
        items, `instructions`, `previous_response_id` (kept by Symposia), `store`
        (default true), streamed with `stream: true`. A field it would not honour is a
        400 naming it. With `Idempotency-Key`, a retry gets the first answer again (a
        stream: its Response, as `response.created` and its last event) and calls no
        model."""
        service, keys = caller.container.responses, caller.container.idempotency
        principal, route = caller.principal.id, http.url.path
        given = body.model_dump(mode="json", exclude_unset=True)
        call = await service.prepare(body.to_request(), principal, caller.principal)
        scope, relay, streams = request_scope(http, caller.container), None, []

        async def ended(kind: str | None, response: dict[str, Any] | None) -> None:
            if idempotency_key is None:
                return
            if kind is None or response is None:  # cut off: nothing to replay, let it go
                await keys.store.release(principal, idempotency_key)
                return
            await keys.settle(principal, idempotency_key, 200, {kind: response})

        async def created() -> Outcome:
            return 200, await service.create(call)

        async def started() -> Outcome:
            streams.append(await service.start(call, ended))
            return 200, {}

        try:
            with scope:
                if not body.stream:
                    answer = await keys.answer(idempotency_key, principal, route, given, created)
                    return JSONResponse(answer.body, answer.status, answer.headers)
                answer = await keys.answer(
                    idempotency_key, principal, route, given, started, deferred=True
                )
                if answer.replayed:
                    return _replayed_stream(answer.body, answer.headers)
            encoder = ResponseEncoder()
            relay = RelayResponse(
                encoder.stream(streams[0]),
                scope,
                {},
                caller.container.settings.sse_send_timeout,
                # Cut by the server (its shutdown): `response.failed`, numbered on.
                farewell=lambda error: encoder.encode(call.failed(error)),
            )
            return relay
        except ClientGoneError:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        finally:
            if relay is None:
                scope.close()

    @router.get(
        "/responses/{response_id}",
        dependencies=[Depends(get_principal)],
        responses=openai_errors(401, 404, 503),
    )
    async def get_response(
        response_id: str, container: ContainerDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        """A stored response (one created with `store` true), as it was returned."""
        return await container.responses.get(response_id, principal.id)

    @router.delete(
        "/responses/{response_id}",
        dependencies=[Depends(get_principal)],
        responses=openai_errors(401, 404, 503),
    )
    async def delete_response(
        response_id: str, container: ContainerDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        """Forget a stored response: it can no longer be retrieved nor continued."""
        await container.responses.delete(response_id, principal.id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    return router


routers = [_router("/v1"), _router("/api/v1")]


def _replayed_stream(ended: dict[str, Any], headers: dict[str, str]) -> Response:
    """A streamed response's answer again: `response.created`, then the event it ended with,
    both carrying the Response object as it ended (what a client keeps of a stream)."""
    ((kind, response),) = ended.items()
    return Response(replayed(kind, response), media_type="text/event-stream", headers=headers)

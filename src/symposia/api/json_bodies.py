"""Every JSON body is measured before a route reads it: one nested too deep or holding too
many values (see `json_bounds`) is a 422 naming the field that holds it (a 400 in
OpenAI's shape, `param` naming it, under `/v1`), before any validator or handler walks
it. Every router of the API is built with `BoundedJsonRoute`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from symposia.errors import InvalidInputError
from symposia.json_bounds import excess, field_of

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def json_content(content_type: str | None) -> bool:
    """What FastAPI parses as JSON: `application/json`, `application/*+json`, or no type."""
    if content_type is None:
        return True
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def check_json(value: Any, prefix: str = "") -> None:
    """InvalidInputError naming the field when `value` is over the bounds."""
    found = excess(value)
    if found is not None:
        problem, path = found
        field = field_of(path)
        if prefix:
            field = prefix if field == "body" else f"{prefix}.{field}"
        raise InvalidInputError(f"{field} {problem}", field)


class BoundedJsonRoute(APIRoute):
    """A route whose JSON body is checked by `check_json` first. The parsed body stays
    on the request, so FastAPI does not parse it again; one it cannot parse is left to
    FastAPI's own answer, except one too deep for the parser itself."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and json_content(
                request.headers.get("content-type")
            ):
                try:
                    await _check_body(request)
                except ClientDisconnect:  # gone mid-body (or cut by the body read timeout)
                    return Response(status_code=400)  # nobody is there to read it
            return await handle(request)

        return checked


async def _check_body(request: Request) -> None:
    if not await request.body():
        return
    try:
        body = await request.json()
    except RecursionError:
        raise InvalidInputError("the body is nested too deep to be read", "body") from None
    except ValueError:
        return  # not JSON: FastAPI parses it again and says where it is wrong
    check_json(body)

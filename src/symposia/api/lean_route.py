"""A route for the hot path: FastAPI describes it (OpenAPI), the route serves it.

FastAPI's per-request machinery (the dependency solver, its exit stacks, a second
request wrapper) cost as much CPU as relaying the answer itself. A `LeanRoute` keeps
the endpoint, its signature and its OpenAPI description as they are, and on a request
does the few things that endpoint's signature asks, in FastAPI's order and with its
errors, then calls the endpoint:

1. the body is read and, if JSON, parsed once (orjson; anything orjson refuses is
   parsed again as FastAPI parses it, so an error names the same character) and held
   to the bounds of `json_bodies`;
2. authentication and the rate limit of `limit_scope` (the `rate_limited_caller`
   dependency, as `caller`);
3. header and body validated by FastAPI's own functions (`request_params_to_args`,
   `request_body_to_args`), so a 400/422 reads as it did.

The endpoint must take `body`, `caller` and `http` (the `Request`), and optional header
parameters; `LeanRoute` checks that when the route is built. Exceptions go to the app's
exception handlers, as from any route.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from symposia.api.deps import Caller, container_from, count_request, get_principal
from symposia.api.json_bodies import BoundedJsonRoute, check_json, json_content
from symposia.errors import InvalidInputError

LEAN_PARAMETERS = {"body", "caller", "http"}
# A run of digits that may not fit 64 bits (2**63 has 19): the standard library parses it.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_NO_BODY = object()  # FastAPI's `Undefined`: an empty body, validated as a missing one


class LeanRoute(BoundedJsonRoute):
    """A JSON route served without FastAPI's dependency solver (see the module)."""

    limit_scope = "chat"

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        names = set(inspect.signature(endpoint).parameters)
        headers = {param.name for param in self.dependant.header_params}
        if names - headers != LEAN_PARAMETERS or self.body_field is None:
            raise TypeError(f"a LeanRoute endpoint takes {sorted(LEAN_PARAMETERS)} and headers")
        self._endpoint: Callable[..., Awaitable[Response]] = endpoint
        # Optional headers defaulting to None, looked up under the names FastAPI looks them
        # up by: a request that sends none of them (most) gets the defaults without
        # FastAPI's validation, which had nothing to validate.
        fields = self.dependant.header_params
        optional = all(
            _get_param_model(f) is None and not f.field_info.is_required() and f.default is None
            for f in fields
        )
        self._header_names = (
            tuple(name for f in fields for _, name in _get_param_aliases(f)) if optional else None
        )
        self._header_defaults = {f.name: None for f in fields}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # FastAPI's 405
            return
        request = Request(scope, receive)
        try:
            body = await _json_body(request)
        except ClientDisconnect:  # gone mid-body (or cut by the body read timeout)
            response = Response(status_code=400)  # nobody is there to read it
        else:
            response = await self._respond(request, body)
        await response(scope, receive, send)

    async def _respond(self, request: Request, body: Any) -> Response:
        container = container_from(request)
        principal = await get_principal(request)
        await count_request(request, container, principal, self.limit_scope)
        values: dict[str, Any] = {"caller": Caller(container, principal), "http": request}
        errors: list[Any] = []
        params = self.dependant.header_params
        if params:
            if self._none_sent(request.headers):
                values.update(self._header_defaults)
            else:
                found, errors = request_params_to_args(params, request.headers)
                values.update(found)
        assert self.body_field is not None  # checked when built
        received = body if body is not _NO_BODY else PydanticUndefined
        found, body_errors = await request_body_to_args([self.body_field], received, False)
        if errors or body_errors:
            raise RequestValidationError([*errors, *body_errors], body=received)
        values.update(found)
        return await self._endpoint(**values)

    def _none_sent(self, headers: Any) -> bool:
        """Whether the request sent none of the route's headers, all optional."""
        if self._header_names is None:
            return False
        for name in self._header_names:  # noqa: SIM110 (a plain loop: no generator made)
            if name in headers:
                return False
        return True


async def _json_body(request: Request) -> Any:
    """The body as FastAPI would hand it to validation: parsed when its content type is
    JSON, the bytes otherwise (no content type included: FastAPI is strict about it),
    `_NO_BODY` when empty. A JSON body over the bounds is a 400 naming its field first."""
    raw = await request.body()
    if not raw:
        return _NO_BODY
    content_type = request.headers.get("content-type")
    if not json_content(content_type):
        return raw
    typed = content_type is not None
    try:
        if _LONG_NUMBER.search(raw):  # orjson reads past 64 bits as a float: not FastAPI's
            raise orjson.JSONDecodeError("a long number", "", 0)
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = _as_fastapi_parses(raw, typed)
        if parsed is raw:
            return raw
    check_json(parsed)
    # Without a content type FastAPI does not parse the body: it fails validation as bytes.
    return parsed if typed else raw


def _as_fastapi_parses(raw: bytes, typed: bool) -> Any:
    """What orjson refused (NaN, a huge integer, UTF-16, bad JSON), read by the standard
    library as FastAPI reads it, and failing as FastAPI fails; `raw` itself for an
    untyped body that is no JSON (FastAPI's validation says what is wrong with it)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidInputError("the body is nested too deep to be read", "body") from None
    except json.JSONDecodeError as exc:
        if not typed:
            return raw
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from None
    except ValueError as exc:  # not text at all (bad UTF-8): the handler names the cause
        if not typed:
            return raw
        raise HTTPException(400, "There was an error parsing the body") from exc

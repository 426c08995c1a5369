"""Every error leaves as JSON with a status a client can act on; none is a 500 by accident."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from symposia.errors import (
    UNAVAILABLE_RETRY_AFTER_SECONDS,
    InvalidInputError,
    ServerBusyError,
    SymposiaError,
    UnavailableError,
)
from symposia.storage.failures import (
    asyncpg_connect_failures,
    is_busy,
    is_connection_failure,
    summary,
)
from symposia.streaming.openai_errors import OPENAI_ROOTS, is_openai_path, openai_error

logger = logging.getLogger(__name__)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _error_of(error: dict[str, Any]) -> dict[str, str]:
    """One validation error as `{field, message}`. A body that is not JSON is the body's
    error: FastAPI puts the character offset where a field goes."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        where = f" at character {loc[-1]}" if len(loc) > 1 else ""
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return {"field": "body", "message": f"not valid JSON: {reason}{where}"}
    return {"field": _field_name(loc), "message": error.get("msg", "invalid")}


DATABASE_DOWN = "the database is unavailable right now; try again shortly"


def _openai_path(request: Request) -> bool:
    return is_openai_path(request.url.path)


def _openai_response(exc: SymposiaError) -> JSONResponse:
    status, body, headers = openai_error(exc)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _symposia_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SymposiaError)
    if _openai_path(request):
        return _openai_response(exc)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)


def validation_body(exc: RequestValidationError) -> dict[str, Any]:
    """The JSON of a request that failed validation: the first error's field and message,
    and all of them."""
    errors = [_error_of(e) for e in exc.errors()]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    return {"code": "invalid_input", "message": message, "field": first["field"], "errors": errors}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    body = validation_body(exc)
    if _openai_path(request):  # `param` names a parameter; the body as a whole is none
        param = body["field"] if body["field"] != "body" else None
        return _openai_response(InvalidInputError(body["message"], param))
    return JSONResponse(body, status_code=422)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database that cannot be reached is a 503 worth retrying. Anything else it
    refused is a bug of ours (input is validated before it gets there): a 500 that says
    so, never an outage that invites retries. Logged by type only: no SQL, no values."""
    where = f"{request.method} {request.url.path}"
    if is_busy(exc):
        return await _database_busy(request, exc)
    if not is_connection_failure(exc):
        logger.error("database error on %s: %s", where, summary(exc))
        failure = SymposiaError("internal error; it has been logged")
        if _openai_path(request):
            return _openai_response(failure)
        return JSONResponse(failure.to_dict(), status_code=500)
    logger.error("database unavailable on %s: %s", where, summary(exc))
    retry = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    if _openai_path(request):
        return _openai_response(UnavailableError(DATABASE_DOWN, headers=retry))
    return JSONResponse(
        {
            "code": "database_unavailable",
            "message": DATABASE_DOWN,
        },
        status_code=503,
        headers=retry,
    )


PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _allowed_methods(request: Request) -> str:
    """Every method the path takes: Starlette's 405 names only its first matching route's."""
    scope = request.scope
    allowed = []
    for method in PROBED_METHODS:
        probe = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", "")}
        probe["method"] = method
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def _openai_routes(request: Request) -> str:
    """The OpenAI-compatible routes under the request's root, for a 404 that says what
    exists (a client trying `/v1/embeddings` learns this server has none). Read from the
    OpenAPI document, built once and cached by FastAPI."""
    path = request.url.path
    root = next(r for r in sorted(OPENAI_ROOTS, key=len, reverse=True) if path.startswith(r))
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    served = [
        f"{method.upper()} {route}"
        for route, operations in paths.items()
        if route.startswith(root + "/")
        for method in operations
    ]
    return ", ".join(served)


def _matches(request: Request, path: str, *, method_too: bool = False) -> bool:
    """Whether a route of the app takes `path` (`method_too`: with the request's method;
    else with any, which Starlette calls a partial match)."""
    root = request.scope.get("root_path", "")
    probe = {"type": "http", "path": path, "root_path": root, "method": request.method}
    wanted = (Match.FULL,) if method_too else (Match.FULL, Match.PARTIAL)
    return any(route.matches(probe)[0] in wanted for route in request.app.router.routes)


def _under_openai_root(request: Request) -> str | None:
    """The OpenAI-compatible route a request that matched no route meant, when its client
    was given a base URL without `/v1` (`POST /chat/completions` for
    `POST /v1/chat/completions`), with its method when that route takes it. None for any
    other path, and for one a route takes (a route of its own at the root, mounted
    later, is left alone: this is only the fallback for what nothing serves)."""
    path = request.url.path
    if is_openai_path(path) or _matches(request, path):
        return None
    meant = [root + path for root in OPENAI_ROOTS[:1]]
    if path.startswith("/api/"):
        meant.insert(0, OPENAI_ROOTS[1] + path.removeprefix("/api"))
    for candidate in meant:
        if _matches(request, candidate, method_too=True):
            return f"{request.method} {candidate}"
    for candidate in meant:
        if _matches(request, candidate):
            return candidate
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own errors (404 route, 405, an unreadable body), in the
    shape of every other error instead of `{"detail": ...}`."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    message = exc.detail
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
        message = f"{where} is not allowed; this path takes {headers['Allow']}"
    if isinstance(exc.__cause__, UnicodeDecodeError):
        message = "the request body is not valid UTF-8"
    code = HTTP_CODES.get(exc.status_code, "http_error")
    meant = _under_openai_root(request) if exc.status_code == 404 else None
    if meant is not None:  # an OpenAI client with a base URL that lacks `/v1`
        message = (
            f"Invalid URL ({where}); the OpenAI-compatible API is under /v1: {meant} "
            "(end the client's base URL with /v1)"
        )
        error = SymposiaError(message, headers)
        error.status_code, error.code = 404, code
        return _openai_response(error)
    if _openai_path(request):
        if exc.status_code == 404:  # OpenAI's own words for it, then what exists here
            message = f"Invalid URL ({where}); this server serves {_openai_routes(request)}"
        error = SymposiaError(message, headers)
        error.status_code, error.code = exc.status_code, code
        return _openai_response(error)
    body = {"code": code, "message": message}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


SERVER_BUSY = "the server is busy: the database is taken by other requests; try again shortly"


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    """The database is fine, just taken: more requests than connections right now, or
    SQLite's one writer lock held past its busy timeout."""
    logger.warning("database busy on %s %s", request.method, request.url.path)
    busy = ServerBusyError(SERVER_BUSY, headers={"Retry-After": "1"})
    if _openai_path(request):
        return _openai_response(busy)
    return JSONResponse(busy.to_dict(), status_code=busy.status_code, headers=busy.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug of ours: still OpenAI's shape under `/v1` (an OpenAI client raises its own
    InternalServerError), Starlette's plain 500 elsewhere. The exception goes on to the
    server, which logs its traceback."""
    if _openai_path(request):
        return _openai_response(SymposiaError("internal error; it has been logged"))
    return PlainTextResponse("Internal Server Error", status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(SymposiaError, _symposia_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # SQLAlchemy's errors, and what asyncpg raises itself when it cannot connect at all
    # (an OSError, or its own error); `is_connection_failure` tells outages apart.
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    # (asyncpg is loaded by then on PostgreSQL: the container's engine imported it.)
    for driver_error in asyncpg_connect_failures():
        app.add_exception_handler(driver_error, _database_error)
    # More specific than SQLAlchemyError, so this handler wins for it (Starlette goes by MRO).
    app.add_exception_handler(PoolTimeoutError, _database_busy)

"""Every error leaves as JSON with a status a client can act on; none is a 500 by accident."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from symposia.errors import InvalidInputError, SymposiaError, UnavailableError
from symposia.storage.failures import ASYNCPG_CONNECT_FAILURES, is_connection_failure, summary
from symposia.streaming.openai_errors import openai_error

logger = logging.getLogger(__name__)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


OPENAI_PREFIXES = ("/v1/", "/api/v1/")
DATABASE_DOWN = "the database is unavailable right now; try again shortly"


def _openai_path(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PREFIXES)


def _openai_response(exc: SymposiaError) -> JSONResponse:
    status, body, headers = openai_error(exc)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _symposia_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SymposiaError)
    if _openai_path(request):
        return _openai_response(exc)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if _openai_path(request):
        return _openai_response(InvalidInputError(message, first["field"]))
    return JSONResponse(
        {"code": "invalid_input", "message": message, "field": first["field"], "errors": errors},
        status_code=422,
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database that cannot be reached is a 503 worth retrying. Anything else it
    refused is a bug of ours (input is validated before it gets there): a 500 that says
    so, never an outage that invites retries. Logged by type only: no SQL, no values."""
    where = f"{request.method} {request.url.path}"
    if not is_connection_failure(exc):
        logger.error("database error on %s: %s", where, summary(exc))
        failure = SymposiaError("internal error; it has been logged")
        if _openai_path(request):
            return _openai_response(failure)
        return JSONResponse(failure.to_dict(), status_code=500)
    logger.error("database unavailable on %s: %s", where, summary(exc))
    if _openai_path(request):
        return _openai_response(UnavailableError(DATABASE_DOWN, headers={"Retry-After": "5"}))
    return JSONResponse(
        {
            "code": "database_unavailable",
            "message": DATABASE_DOWN,
        },
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SymposiaError, _symposia_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # SQLAlchemy's errors, and what asyncpg raises itself when it cannot connect at all
    # (an OSError, or its own error); `is_connection_failure` tells outages apart.
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    for driver_error in ASYNCPG_CONNECT_FAILURES:
        app.add_exception_handler(driver_error, _database_error)

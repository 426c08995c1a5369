"""The error answers each route declares in the OpenAPI document, with their body schemas.

`/api` errors are `{"code", "message", ...}` (api.errors); `/v1` errors are OpenAI's
`{"error": {...}}` (streaming.openai_errors). A route lists the statuses it can answer:
`api_errors(404, 409)`, `openai_errors(400, 404)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from symposia.streaming.openai_errors import is_openai_path

DESCRIPTIONS = {
    400: "Malformed request (a body that is not UTF-8 JSON, a bad Last-Event-ID)",
    401: "Missing or invalid credentials",
    403: "A change made with the session cookie without its `X-CSRF-Token`",
    404: "No such object, or not yours",
    405: "Method not allowed; `Allow` lists the path's methods",
    409: "The object's state forbids the change",
    413: "Body over MAX_BODY_BYTES, or a message over MAX_MESSAGE_CHARS",
    422: "A field is invalid; `field` names it",
    429: "Rate or concurrency limit; `Retry-After` says when to retry",
    502: "The model provider failed",
    503: "The database is unavailable; `Retry-After` says when to retry",
    504: "The model provider timed out",
}


class FieldError(BaseModel):
    field: str
    message: str


class ApiError(BaseModel):
    """Every `/api` error; a provider failure adds `provider`, `model`, `retryable`, ..."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = None
    errors: list[FieldError] | None = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


Responses = dict[int | str, dict[str, Any]]


def api_errors(*statuses: int) -> Responses:
    return {s: {"model": ApiError, "description": DESCRIPTIONS[s]} for s in statuses}


# One server-sent event, as a client parses it (and OpenAPI 3.2's `itemSchema` names it):
# its fields, `data` the JSON text of the event.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


def json_or_stream(description: str) -> Responses:
    """A 200 that is a JSON object, or with `stream: true` server-sent events."""
    return {
        200: {
            "description": description,
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        }
    }


def openai_errors(*statuses: int) -> Responses:
    return {s: {"model": OpenAIError, "description": DESCRIPTIONS[s]} for s in statuses}


def openai_without_422(app: FastAPI) -> None:
    """FastAPI documents a 422 on every route with parameters; `/v1` answers bad input
    with OpenAI's 400 instead, so its routes must not list one."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for path, operations in generate()["paths"].items():
                if is_openai_path(path):
                    for operation in operations.values():
                        operation["responses"].pop("422", None)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]

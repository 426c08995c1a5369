"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the
status an OpenAI client expects, so its SDK raises its own exception types."""

from __future__ import annotations

from typing import Any

from symposia.errors import (
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ProviderError,
    SymposiaError,
    UnauthorizedError,
)
from symposia.providers.failures import CONTEXT_LENGTH_EXCEEDED

# A failure of an upstream provider, seen by our client: our key being refused upstream is
# the server's problem (502), not the client's (401).
UPSTREAM_STATUS = {400: 400, 404: 404, 408: 504, 413: 413, 422: 400, 429: 429}

UPSTREAM_AUTH_FAILED = "upstream_authentication_failed"

# Where the OpenAI-compatible API lives: every answer under these is OpenAI's shape.
OPENAI_ROOTS = ("/v1", "/api/v1")
_OPENAI_PREFIXES = tuple(root + "/" for root in OPENAI_ROOTS)


def is_openai_path(path: str) -> bool:
    """`/v1`, `/api/v1` and everything under them (not `/v10` nor `/api/v1x`)."""
    return path.startswith(_OPENAI_PREFIXES) or path in OPENAI_ROOTS


def _kind(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def openai_error(exc: SymposiaError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, error object, headers) for any Symposia error."""
    headers = dict(exc.headers)
    param: str | None = None
    if isinstance(exc, ProviderError):
        failure = exc.failure
        status = UPSTREAM_STATUS.get(failure.status or 0, 504 if failure.code == "timeout" else 502)
        message = failure.message + (f" ({failure.suggestion})" if failure.suggestion else "")
        code: str | None = failure.code
        if failure.status == 401:
            # Not `invalid_api_key`: OpenAI clients read that as their own key being wrong.
            code = UPSTREAM_AUTH_FAILED
            message = (
                f"{failure.provider} refused this server's credentials; the server's "
                f"operator must fix them ({failure.suggestion or 'check the provider key'})"
            )
        if failure.code == CONTEXT_LENGTH_EXCEEDED:
            param = "messages"  # as OpenAI names it: the prompt is what is too long
        if status == 429 and failure.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(failure.retry_after)))
    else:
        status, message, code = exc.status_code, exc.message, exc.code
        if isinstance(exc, InvalidInputError):
            status, param = 400, exc.field  # OpenAI answers bad parameters with 400
        if isinstance(exc, PayloadTooLargeError):
            param = exc.field
        if isinstance(exc, UnauthorizedError):
            code = "invalid_api_key"
        if isinstance(exc, NotFoundError) and "model" in message:
            code = "model_not_found"
    kind = getattr(exc, "openai_type", None) or _kind(status)
    body = {"message": message, "type": kind, "param": param, "code": code}
    return status, body, headers

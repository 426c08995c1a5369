"""Symposia's exception tree. Every error a user can cause maps to one HTTP status.

SymposiaError
├── BadRequestError            400  malformed protocol input (e.g. Last-Event-ID)
├── UnauthorizedError          401  no valid credentials
├── ForbiddenError             403  a session's request without its CSRF token
│   └── ModelNotAllowedError         a key's `models` patterns do not match the model
├── NotFoundError              404  unknown run, conversation, message, bot index
│   └── ModelNotFoundError           no such model here (GET /v1/models/{model})
├── ConflictError              409  the object is in a state that forbids the change
│   ├── ReplyInProgressError         a conversation's reply is still being generated
│   └── FencedOutError               a writer lost its lease (a newer epoch holds it)
├── PayloadTooLargeError       413  a message over MAX_MESSAGE_CHARS
├── InvalidInputError          422  a field is wrong; `field` names it
│   ├── UnknownProviderError         the `provider/` prefix is not registered
│   ├── UnknownModelError            the provider does not offer that model
│   ├── AmbiguousModelError     400  a bare name more than one provider offers
│   └── ProviderNotConfiguredError   the provider has no credentials here
├── RateLimitedError           429  over a rate or concurrency limit; Retry-After says when
│   └── BudgetExceededError          a key's remaining budget cannot hold the worst case
├── ProviderError              502  a model call failed; carries the user-facing shape
└── UnavailableError           503  a dependency (the database) is down
    ├── ShuttingDownError            the server is stopping; a request in flight ends
    ├── ServerBusyError              the database is taken (pool, SQLite lock): load, not an outage
    └── EventLogUnavailableError     the Redis event log did not answer in time
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symposia.security.redact import redact

# A failure's message is cut to this after redaction (a key cut in half would escape it).
FAILURE_MESSAGE_MAX_CHARS = 400
# Redaction reads no more of a message than this.
_REDACT_MAX_CHARS = 4 * FAILURE_MESSAGE_MAX_CHARS


class SymposiaError(Exception):
    """Root of every error Symposia raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class UnauthorizedError(SymposiaError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "authentication required", scheme: str = "Basic") -> None:
        """`scheme` is the challenge: Basic only where a Basic user is configured (a browser
        answers it with a login dialog), else Bearer (an API key)."""
        challenge = f'{scheme} realm="symposia"'
        if scheme == "Basic":
            challenge += ', charset="UTF-8"'
        super().__init__(message, {"WWW-Authenticate": challenge})


class ForbiddenError(SymposiaError):
    status_code = 403
    code = "forbidden"


class RateLimitedError(SymposiaError):
    status_code = 429
    code = "rate_limited"


class BudgetExceededError(RateLimitedError):
    """A key's remaining budget cannot hold the request's worst case: OpenAI's
    `insufficient_quota`, refused before any upstream call."""

    code = "budget_exceeded"
    openai_type = "insufficient_quota"


class ModelNotAllowedError(ForbiddenError):
    """The key may not use this model (its `models` patterns do not match)."""

    code = "model_not_allowed"


class NotFoundError(SymposiaError):
    status_code = 404
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class ConflictError(SymposiaError):
    status_code = 409
    code = "conflict"


class ReplyInProgressError(ConflictError):
    """A conversation answers one message at a time: a reply is still being generated."""

    code = "reply_in_progress"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"a reply in conversation {conversation_id!r} is still being generated: wait "
            "for its `done` event (GET /api/conversations/{id}/stream follows it) before "
            "sending another message"
        )


class FencedOutError(ConflictError):
    """A write of a run (or a reply) by a process whose lease epoch is no longer its own:
    another process claimed it since, so this one must stop writing. Never reaches a
    client."""

    code = "fenced_out"


class BadRequestError(SymposiaError):
    status_code = 400
    code = "bad_request"


class PayloadTooLargeError(SymposiaError):
    status_code = 413
    code = "payload_too_large"

    def __init__(self, message: str, field: str | None = None) -> None:
        """`field`: the one too large, where there is one (`param` under `/v1`)."""
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        found = super().to_dict()
        return found if self.field is None else {**found, "field": self.field}


class UnavailableError(SymposiaError):
    status_code = 503
    code = "unavailable"


class ShuttingDownError(UnavailableError):
    """The server is stopping: a request still in flight is ended with this."""

    code = "server_shutdown"

    def __init__(self, message: str = "the server is shutting down") -> None:
        super().__init__(message)


class ServerBusyError(UnavailableError):
    """No pooled database connection came free in time: load, not an outage."""

    code = "server_busy"


# What a 503 for a dependency that did not answer asks a client to wait before retrying.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


class EventLogUnavailableError(UnavailableError):
    """The Redis event log could not be reached, or did not answer within its timeouts."""

    code = "event_log_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})


class InvalidInputError(SymposiaError):
    status_code = 422
    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class UnknownProviderError(InvalidInputError):
    code = "unknown_provider"


class UnknownModelError(InvalidInputError):
    code = "unknown_model"


class AmbiguousModelError(InvalidInputError):
    """A bare model name that more than one configured provider offers: the message
    lists them (a 400, as OpenAI answers a bad request, not a 422)."""

    status_code = 400
    code = "ambiguous_model"


class UnsupportedParameterError(InvalidInputError):
    """A parameter the chosen provider cannot honour: refused, never silently dropped."""

    code = "unsupported_parameter"


class ProviderNotConfiguredError(InvalidInputError):
    code = "provider_not_configured"


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """The one shape every provider failure takes, for SSE `error` events and HTTP bodies.

    Its text may quote the provider, which may echo our key: it is redacted here, where
    every failure is built, before it can reach a client, a log or the database.
    """

    code: str
    message: str
    provider: str
    model: str
    status: int | None = None
    retryable: bool = False
    suggestion: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        message = redact(self.message[:_REDACT_MAX_CHARS])[:FAILURE_MESSAGE_MAX_CHARS]
        object.__setattr__(self, "message", message)
        if self.suggestion is not None:
            object.__setattr__(self, "suggestion", redact(self.suggestion))

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "retryable": self.retryable,
            "suggestion": self.suggestion,
            "retry_after": self.retry_after,
        }


class ProviderError(SymposiaError):
    """A model call failed; `failure` says how, in terms a user can act on."""

    status_code = 502
    code = "provider_error"

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure

    def to_dict(self) -> dict[str, Any]:
        return self.failure.to_dict()

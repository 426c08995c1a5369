"""Turn a provider's HTTP status or transport fault into the one user-facing failure shape.

The retry policy reads `retryable` and `retry_after` from here, so which statuses are
retried is decided in exactly one place (`RETRYABLE_STATUSES`).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from symposia.errors import ProviderFailure

# Longer is nonsense (and `round` wants a finite number); how long a call may actually
# wait is the retry policy's `max_retry_after`.
RETRY_AFTER_CEILING_SECONDS = 86_400.0
OVERLOADED = 529
RETRYABLE_STATUSES = frozenset({408, 409, 429, OVERLOADED})
NEVER_RETRIED = frozenset({400, 401, 403, 404, 422})
MODELS_HINT = "see GET /api/models for the models this server can use"
# OpenAI's code for a prompt (with the answer's max_tokens) longer than the model's
# context; LangChain raises its ContextOverflowError on it, pydantic-ai its own.
CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
# How upstreams that send no such code word it: Anthropic ("prompt is too long: 210000
# tokens > 200000 maximum"), vLLM, OpenRouter and Groq ("maximum context length").
CONTEXT_OVERFLOW_WORDS = (
    "prompt is too long",
    "maximum context length",
    "reduce the length of the messages",
)


def is_context_overflow(status: int, code: object, detail: str) -> bool:
    """Whether an upstream's 400 says the prompt does not fit the model's context."""
    if status != 400:
        return False
    lowered = detail.lower()
    return code == CONTEXT_LENGTH_EXCEEDED or any(w in lowered for w in CONTEXT_OVERFLOW_WORDS)


def is_retryable_status(status: int) -> bool:
    return status not in NEVER_RETRIED and (status in RETRYABLE_STATUSES or 500 <= status < 600)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (a number or an HTTP date); None if absent or bad.

    Not capped to what we will wait: a client told to come back is told the provider's
    figure."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = parsed.timestamp() - (now if now is not None else time.time())
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CEILING_SECONDS)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    return next((v for k, v in headers.items() if k.lower() == name), None)


def from_status(
    status: int,
    detail: str,
    *,
    provider: str,
    model: str,
    key_env: str | None,
    headers: Mapping[str, str] | None = None,
    error_code: object = None,
) -> ProviderFailure:
    """A failure for an HTTP error answer of the provider; `error_code` is the `code` its
    error body named, if any."""
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    retryable = is_retryable_status(status)
    key_hint = f"set {key_env} to a valid key" if key_env else "check the provider credentials"
    code, message, suggestion = "provider_error", f"{provider} answered {status}", None
    if status == 401:
        code, message, suggestion = "invalid_api_key", f"{provider} rejected the API key", key_hint
    elif status == 403:
        code, message = "permission_denied", f"{provider} refused access to {model}"
        suggestion = f"{key_hint} that may use {model}"
    elif status == 404:
        code, message = "model_not_found", f"{provider} does not know the model {model!r}"
        suggestion = MODELS_HINT
    elif is_context_overflow(status, error_code, detail):
        code = CONTEXT_LENGTH_EXCEEDED
        # "prompt is too long" is what LangChain matches for its ContextOverflowError.
        message = f"{provider} rejected the request: the prompt is too long for {model}"
        suggestion = "shorten the messages, or ask for fewer max_tokens"
    elif status in (400, 422):
        code, message = "bad_request", f"{provider} rejected the request"
    elif status == 429:
        code, message = "rate_limited", f"{provider} is rate limiting requests"
        suggestion = (
            f"try again in {retry_after:.0f} s" if retry_after is not None else "try again later"
        )
    elif status == OVERLOADED:
        code, message = "overloaded", f"{provider} is overloaded"
        suggestion = "try again in a minute, or name a fallback model"
    elif status in (408, 504):
        code, message = "timeout", f"{provider} timed out"
    elif status >= 500:
        code, message = "provider_unavailable", f"{provider} had a server error ({status})"
        suggestion = "try again later, or name a fallback model"
    if detail:
        message = f"{message}: {detail}"  # redacted, then cut, by ProviderFailure
    return ProviderFailure(
        code=code,
        message=message,
        provider=provider,
        model=model,
        status=status,
        retryable=retryable,
        suggestion=suggestion,
        retry_after=retry_after,
    )


def connection_failure(provider: str, model: str, detail: str) -> ProviderFailure:
    return ProviderFailure(
        code="connection_error",
        message=f"could not reach {provider}: {detail}",
        provider=provider,
        model=model,
        retryable=True,
        suggestion="check the provider's base URL and the network",
    )


def timeout_failure(provider: str, model: str, what: str, seconds: float) -> ProviderFailure:
    return ProviderFailure(
        code="timeout",
        message=f"{provider} sent no {what} within {seconds:g} s",
        provider=provider,
        model=model,
        retryable=True,
        suggestion="raise LLM_TIMEOUT / LLM_IDLE_TIMEOUT, or name a fallback model",
    )


def stream_failure(provider: str, model: str, detail: str) -> ProviderFailure:
    """The response broke off or could not be parsed."""
    return ProviderFailure(
        code="stream_error",
        message=f"the {provider} stream broke: {detail}",
        provider=provider,
        model=model,
        retryable=True,
    )


def cut_short(provider: str, model: str, end: str) -> ProviderFailure:
    """The body ended cleanly but before the stream's own end (`end`): a proxy or an
    upstream that died mid-answer. What arrived is not the whole answer."""
    return stream_failure(
        provider, model, f"the answer ended before its end ({end}): it was cut short"
    )


def not_configured(provider: str, key_env: str) -> ProviderFailure:
    return ProviderFailure(
        code="provider_not_configured",
        message=f"the {provider} provider has no API key",
        provider=provider,
        model="",
        retryable=False,
        suggestion=f"set {key_env}",
    )

"""One retry policy, timeouts and fallbacks for every provider.

The SDKs' own retries are off, so this is the only retry loop. A call is retried only
before its first text delta: once text has reached the user, a failure ends the turn
(the partial text is kept by the caller) and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from symposia.aio import Watchdog
from symposia.errors import ProviderError, ProviderFailure, SymposiaError
from symposia.observability import tracing
from symposia.observability.genai_spans import traced_call
from symposia.providers.base import CompletionRequest, Delta, Provider, TextDelta
from symposia.providers.failures import timeout_failure
from symposia.providers.registry import ProviderRegistry
from symposia.providers.routes import DEFAULTABLE, Route, defaulted

# Defaults a provider takes only if it has the feature of the same name.
SAMPLING = frozenset({"temperature", "top_p", "seed"})

logger = logging.getLogger("symposia.providers")

Sleep = Callable[[float], Awaitable[None]]
# (provider, status "ok" or a failure code, seconds to first token, seconds in all)
CallObserver = Callable[[str, str, float | None, float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter (base, 2x base, 4x base...), or the server's
    `Retry-After` when it sent one, up to `max_retry_after`: a provider asking for a
    longer wait fails the call at once, its Retry-After passed on to the client, rather
    than holding the client in silence for an answer that can only be the same."""

    max_attempts: int = 3
    base_delay: float = 1.0
    jitter: float = 0.2
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return retry_after
        delay = self.base_delay * 2 ** (attempt - 1)
        return float(delay * (1 + self.jitter * (2 * random.random() - 1)))

    def delay(self, attempt: int, failure: ProviderFailure) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up now."""
        if not failure.retryable or attempt >= self.max_attempts:
            return None
        if failure.retry_after is not None and failure.retry_after > self.max_retry_after:
            return None
        return self.backoff(attempt, failure.retry_after)


@dataclass(frozen=True, slots=True)
class Timeouts:
    first_token: float = 60.0
    idle: float = 30.0


async def _timed(
    provider: Provider, request: CompletionRequest, timeouts: Timeouts
) -> AsyncIterator[Delta]:
    """The provider's stream, failing with a retryable timeout when it stalls.

    Only the wait on the provider is timed, never the consumer's time with a delta.
    """
    stream = provider.stream(request)
    watchdog = Watchdog(timeouts.first_token)
    what = "first token"
    try:
        while True:
            watchdog.arm()
            try:
                delta = await anext(stream)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not watchdog.fired:
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                failure = timeout_failure(provider.name, request.model, what, watchdog.limit)
                raise ProviderError(failure) from None
            watchdog.disarm()
            yield delta
            if what != "token" and type(delta) is TextDelta:
                what, watchdog.limit = "token", timeouts.idle
    finally:
        watchdog.close()
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


@dataclass(slots=True)
class ModelCall:
    """One model call with retries and fallbacks; iterate it for the deltas.

    `models` are full `provider/model` names, tried in order when one fails before its
    first delta. After iteration `model` names the one that answered.
    """

    registry: ProviderRegistry
    policy: RetryPolicy
    timeouts: Timeouts
    models: Sequence[str]
    request: CompletionRequest
    sleep: Sleep = asyncio.sleep
    observe: CallObserver | None = None
    model: str = ""
    attempts: list[ProviderFailure] = field(default_factory=list)

    async def __aiter__(self) -> AsyncIterator[Delta]:
        last: ProviderError | None = None
        for full_name in self.models:
            route = self.registry.route_of(full_name)
            chain = [full_name, *(route.fallbacks if route else ())]
            for position, name in enumerate(chain):
                if position and (last is None or not last.failure.retryable):
                    break  # a route's fallbacks stand in only for a retryable failure
                self.model = name
                try:
                    provider, model = await self.registry.aresolve(name)
                except SymposiaError as exc:
                    raise ProviderError(_unresolvable(name, str(exc))) from exc
                request = replace(
                    self.request,
                    model=model,
                    **_defaults(self.registry, name, route, provider, self.request),
                )
                try:
                    async for delta in self._with_retries(provider, request):
                        yield delta
                    return
                except _NoOutputError as exc:
                    last = exc.error
                    continue
        assert last is not None
        raise last

    async def _with_retries(
        self, provider: Provider, request: CompletionRequest
    ) -> AsyncIterator[Delta]:
        for attempt in range(1, self.policy.max_attempts + 1):
            started = time.perf_counter()
            first: float | None = None
            stream = _timed(provider, request, self.timeouts)
            if tracing.TRACER is not None:  # off: this check is all tracing costs a call
                stream = traced_call(stream, provider, request, attempt)
            try:
                async for delta in stream:
                    if first is None and isinstance(delta, TextDelta):
                        first = time.perf_counter()
                    yield delta
            except ProviderError as exc:
                self.attempts.append(exc.failure)
                self._record(provider.name, request, attempt, exc.failure.code, started, first)
                if first is not None:
                    raise
                delay = self.policy.delay(attempt, exc.failure)
                if delay is None:
                    raise _NoOutputError(exc) from exc
                await self.sleep(delay)
                continue
            self._record(provider.name, request, attempt, "ok", started, first)
            return

    def _record(
        self,
        provider: str,
        request: CompletionRequest,
        attempt: int,
        status: str,
        started: float,
        first: float | None,
    ) -> None:
        total = time.perf_counter() - started
        ttft = first - started if first is not None else None
        _log_call(provider, request, attempt, status, ttft, total)
        if self.observe is not None:
            self.observe(provider, status, ttft, total)


def _defaults(
    registry: ProviderRegistry,
    name: str,
    outer: Route | None,
    provider: Provider,
    request: CompletionRequest,
) -> dict[str, Any]:
    """The models file's defaults for what the request left unset: those of `name`'s
    own route, else of the route it stands in for; a sampling default the provider does
    not take (Anthropic's temperature) is left out, as the request could not set it."""
    route = registry.route_of(name) or outer
    if route is None or not route.defaults:
        return {}
    unset = {key: getattr(request, key) for key in DEFAULTABLE}
    return {
        key: value
        for key, value in defaulted(route, unset).items()
        if key not in SAMPLING or key in provider.features
    }


class _NoOutputError(Exception):
    """The model gave up before any text: the next fallback may try."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


def _unresolvable(full_name: str, detail: str) -> ProviderFailure:
    provider, _, _ = full_name.partition("/")
    return ProviderFailure(
        code="unknown_model",
        message=detail,
        provider=provider,
        model=full_name,
        retryable=False,
        suggestion="see GET /api/models for the models this server can use",
    )


def _log_call(
    provider: str,
    request: CompletionRequest,
    attempt: int,
    status: str,
    ttft: float | None,
    total: float,
) -> None:
    logger.info(
        "provider call",
        extra={
            "provider": provider,
            "model": request.model,
            "attempt": attempt,
            "status": status,
            "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
            "total_ms": round(total * 1000, 1),
        },
    )

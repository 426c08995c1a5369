"""The one retry policy: attempts, spacing, Retry-After, timeouts, no retry after output,
fallbacks in order."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from symposia.errors import ProviderError, ProviderFailure
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    Feature,
    StreamEnd,
    TextDelta,
)
from symposia.providers.failures import from_status, is_retryable_status, parse_retry_after
from symposia.providers.registry import ProviderRegistry
from symposia.providers.request_fields import ProviderKind
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from tests.conftest import make_settings

REQUEST = CompletionRequest("m", [ChatMessage("user", "hello")])
DEFAULT_TIMEOUTS = Timeouts(5, 5)


def _failure(status: int, retry_after: float | None = None) -> ProviderFailure:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return from_status(
        status, "", provider="flaky", model="m", key_env="FLAKY_KEY", headers=headers
    )


@dataclass
class Flaky:
    """Each call plays the next outcome: an int status fails at once; "text" answers;
    "text-then-500" fails after one delta; "stall" never answers; "stall-after-1" stalls
    after one delta."""

    name: str
    outcomes: list[object]
    calls: list[str] = field(default_factory=list)
    configured: bool = True
    kind: ProviderKind = "openai"
    features: frozenset[Feature] = frozenset()

    def check_model(self, model: str) -> None:
        pass

    async def models(self) -> list[str]:
        return ["m"]

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        self.calls.append(request.model)
        outcome = self.outcomes.pop(0) if self.outcomes else "text"
        if isinstance(outcome, ProviderFailure):
            raise ProviderError(outcome)
        if isinstance(outcome, int):
            raise ProviderError(_failure(outcome))
        if outcome == "stall":
            await asyncio.Event().wait()
        yield TextDelta(f"from {self.name}")
        if outcome == "text-then-500":
            raise ProviderError(_failure(500))
        if outcome == "stall-after-1":
            await asyncio.Event().wait()
        yield StreamEnd("stop")


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _call(
    *providers: Flaky,
    models: list[str] | None = None,
    attempts: int = 3,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
) -> tuple[ModelCall, Sleeps]:
    sleeps = Sleeps()
    call = ModelCall(
        ProviderRegistry(providers),
        RetryPolicy(attempts, 1.0, jitter=0),
        timeouts,
        models or [f"{providers[0].name}/m"],
        REQUEST,
        sleep=sleeps,
    )
    return call, sleeps


async def _text(call: ModelCall) -> str:
    return "".join([d.text async for d in call if isinstance(d, TextDelta)])


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
async def test_retryable_statuses_are_retried_with_exponential_spacing(status: int) -> None:
    flaky = Flaky("a", [status, status, status])
    call, sleeps = _call(flaky)
    with pytest.raises(ProviderError) as info:
        await _text(call)
    assert len(flaky.calls) == 3
    assert sleeps == [1.0, 2.0]
    assert info.value.failure.status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_never_retried(status: int) -> None:
    flaky = Flaky("a", [status])
    call, sleeps = _call(flaky)
    with pytest.raises(ProviderError):
        await _text(call)
    assert len(flaky.calls) == 1
    assert sleeps == []


async def test_recovers_on_a_later_attempt() -> None:
    flaky = Flaky("a", [503, 429])
    call, sleeps = _call(flaky)
    assert await _text(call) == "from a"
    assert sleeps == [1.0, 2.0]
    assert [f.status for f in call.attempts] == [503, 429]


async def test_retry_after_is_honoured() -> None:
    flaky = Flaky("a", [_failure(429, retry_after=7), "text"])
    call, sleeps = _call(flaky)
    assert await _text(call) == "from a"
    assert sleeps == [7.0]


async def test_no_retry_after_the_first_delta() -> None:
    flaky = Flaky("a", ["text-then-500", "text"])
    call, _ = _call(flaky)
    received: list[str] = []
    with pytest.raises(ProviderError):
        async for delta in call:
            if isinstance(delta, TextDelta):
                received.append(delta.text)
    assert received == ["from a"]  # once: nothing sent twice
    assert len(flaky.calls) == 1


async def test_fallbacks_are_tried_in_order_before_any_output() -> None:
    a, b, c = Flaky("a", [401]), Flaky("b", [503, 503, 503]), Flaky("c", ["text"])
    call, _ = _call(a, b, c, models=["a/m", "b/m", "c/m"])
    assert await _text(call) == "from c"
    assert call.model == "c/m"
    assert (len(a.calls), len(b.calls), len(c.calls)) == (1, 3, 1)


async def test_fallbacks_all_failing_raise_the_last_failure() -> None:
    a, b = Flaky("a", [401]), Flaky("b", [404])
    call, _ = _call(a, b, models=["a/m", "b/m"])
    with pytest.raises(ProviderError) as info:
        await _text(call)
    assert info.value.failure.provider == "flaky"
    assert info.value.failure.status == 404


async def test_no_fallback_after_output() -> None:
    a, b = Flaky("a", ["text-then-500"]), Flaky("b", ["text"])
    call, _ = _call(a, b, models=["a/m", "b/m"])
    with pytest.raises(ProviderError):
        await _text(call)
    assert b.calls == []


async def test_first_token_timeout_frees_a_stalled_call_and_is_retried() -> None:
    flaky = Flaky("a", ["stall", "text"])
    call, sleeps = _call(flaky, timeouts=Timeouts(first_token=0.05, idle=5))
    started = time.monotonic()
    assert await _text(call) == "from a"
    assert time.monotonic() - started < 2
    assert call.attempts[0].code == "timeout"
    assert sleeps == [1.0]


async def test_idle_timeout_after_output_ends_the_call() -> None:
    flaky = Flaky("a", ["stall-after-1", "text"])
    call, _ = _call(flaky, timeouts=Timeouts(first_token=5, idle=0.05))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await _text(call)
    assert time.monotonic() - started < 1  # the idle limit, not the first-token one
    assert info.value.failure.code == "timeout"
    assert "token" in info.value.failure.message
    assert len(flaky.calls) == 1


def test_backoff_is_exponential_with_bounded_jitter() -> None:
    policy = RetryPolicy(4, base_delay=1.0, jitter=0.2)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0)]:
        samples = {policy.backoff(attempt) for _ in range(50)}
        assert all(base * 0.8 <= s <= base * 1.2 for s in samples)
        assert len(samples) > 1  # jittered
    assert policy.backoff(2, retry_after=9.5) == 9.5


def test_retry_after_parsing() -> None:
    now = time.time()
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("3600") == 3600.0  # what the provider asked: the policy decides
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert 8.0 <= (parse_retry_after(date, now=now) or 0) <= 10.0


def test_retryable_status_table() -> None:
    assert all(is_retryable_status(s) for s in (408, 409, 429, 500, 502, 503, 504, 529))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 422))


def test_failures_tell_the_user_what_to_do() -> None:
    assert "OPENAI_API_KEY" in (
        from_status(401, "", provider="openai", model="gpt", key_env="OPENAI_API_KEY").suggestion
        or ""
    )
    limited = from_status(
        429, "", provider="openai", model="gpt", key_env="K", headers={"Retry-After": "12"}
    )
    assert limited.suggestion == "try again in 12 s"
    assert limited.retry_after == 12.0
    missing = from_status(404, "no such model", provider="anthropic", model="claude-x", key_env="K")
    assert "/api/models" in (missing.suggestion or "")
    assert missing.code == "model_not_found"
    assert from_status(529, "", provider="anthropic", model="c", key_env="K").code == "overloaded"


async def test_a_retry_after_beyond_the_limit_fails_at_once() -> None:
    """Issue 10, point 8: an hour's Retry-After was slept as two capped waits."""
    flaky = Flaky("a", [_failure(429, retry_after=3600), "text"])
    call = ModelCall(
        ProviderRegistry([flaky]),
        RetryPolicy(3, 1.0, jitter=0, max_retry_after=60),
        DEFAULT_TIMEOUTS,
        ["a/m"],
        REQUEST,
        sleep=(sleeps := Sleeps()),
    )
    with pytest.raises(ProviderError) as info:
        await _text(call)
    assert sleeps == []
    assert len(flaky.calls) == 1
    assert info.value.failure.retry_after == 3600
    assert info.value.failure.to_dict()["retry_after"] == 3600


def test_the_policy_waits_a_retry_after_up_to_its_limit() -> None:
    policy = RetryPolicy(3, 1.0, jitter=0, max_retry_after=10)
    assert policy.delay(1, _failure(429, retry_after=10)) == 10
    assert policy.delay(1, _failure(429, retry_after=11)) is None
    assert policy.delay(1, _failure(503)) == 1.0
    assert policy.delay(3, _failure(503)) is None  # the last attempt
    assert policy.delay(1, _failure(401)) is None


def test_the_retry_after_limit_is_llm_timeout_unless_set() -> None:
    assert make_settings(llm_timeout=42).retry_after_limit == 42
    assert make_settings(llm_timeout=42, retry_after_max_seconds=5).retry_after_limit == 5

"""A key's rpm, tpm and max_parallel, in this process and in Redis (shared by workers):
admitted and counted in one step, a refused call never counted, an uncounted call given
back, a dead process's open calls forgotten when their lease lapses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from symposia.errors import RateLimitedError
from symposia.governance.limits import KeyLimits
from symposia.governance.rates import KeyRates
from tests.fakes.redis_server import REDIS_URL, require_redis_sync


@pytest.fixture(params=["memory", "redis"])
async def rates(request: pytest.FixtureRequest) -> AsyncIterator[KeyRates]:
    if request.param == "redis":
        require_redis_sync()
    made = KeyRates(REDIS_URL if request.param == "redis" else None, lease_seconds=0.5)
    yield made
    await made.close()


def _key(**limits: int) -> KeyLimits:
    return KeyLimits(f"t{uuid.uuid4().hex[:10]}", **limits)  # type: ignore[arg-type]


async def test_rpm_refuses_the_third_and_a_refusal_is_not_counted(rates: KeyRates) -> None:
    limits = _key(rpm=2)
    await rates.admit(limits, "a")
    await rates.admit(limits, "b")
    for ticket in ("c", "d"):  # refused twice: neither counts
        with pytest.raises(RateLimitedError) as refused:
            await rates.admit(limits, ticket)
    assert refused.value.code == "rpm_exceeded"
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    await rates.uncount(limits, "b")  # its budget refused it: given back
    await rates.admit(limits, "e")


async def test_max_parallel_frees_a_slot_when_done_or_when_its_lease_lapses(
    rates: KeyRates,
) -> None:
    limits = _key(max_parallel=1)
    await rates.admit(limits, "a")
    with pytest.raises(RateLimitedError) as refused:
        await rates.admit(limits, "b")
    assert refused.value.code == "max_parallel_exceeded"
    await rates.done(limits, "a", 10)
    await rates.admit(limits, "c")
    if rates._redis is not None:  # a process that died never says `done`
        await asyncio.sleep(0.7)
        await rates.admit(limits, "d")


async def test_tpm_refuses_once_the_minute_used_its_tokens(rates: KeyRates) -> None:
    limits = _key(tpm=100)
    await rates.admit(limits, "a")
    await rates.done(limits, "a", 150)
    with pytest.raises(RateLimitedError) as refused:
        await rates.admit(limits, "b")
    assert refused.value.code == "tpm_exceeded"

"""The in-memory moving window of the rate limits: exact counts, no thread, bounded keys."""

from __future__ import annotations

import asyncio
import threading

import pytest

from symposia.errors import RateLimitedError
from symposia.security.moving_window import SWEEP_EVERY_SECONDS, MovingWindow
from symposia.security.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_amount_hits_in_any_window() -> None:
    clock = Clock()
    window = MovingWindow(clock)
    assert [window.hit("k", 3, 60) for _ in range(4)] == [True, True, True, False]
    assert window.stats("k", 3, 60) == (1_060.0, 0)
    clock.now += 30
    assert not window.hit("k", 3, 60)  # the three are still within the last 60 s
    assert window.hit("other", 3, 60)  # per key
    clock.now += 30.001
    assert window.hit("k", 3, 60)  # the first three left the window together
    assert window.stats("k", 3, 60) == (clock.now + 60, 2)


def test_a_moving_window_is_not_a_fixed_one() -> None:
    clock = Clock()
    window = MovingWindow(clock)
    assert window.hit("k", 2, 60)
    clock.now += 50
    assert window.hit("k", 2, 60)
    clock.now += 20  # a fixed window would have started afresh; one hit is 20 s old
    assert window.hit("k", 2, 60)
    assert not window.hit("k", 2, 60)


def test_idle_keys_are_swept() -> None:
    clock = Clock()
    window = MovingWindow(clock)
    for n in range(100):
        window.hit(f"ip-{n}", 5, 60)
    clock.now += SWEEP_EVERY_SECONDS + 1
    window.hit("busy", 5, 60)
    assert len(window) == 1


async def test_the_memory_limiter_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """`limits`' memory storage started a timer thread every 10 ms under load."""
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting)
    limiter = RateLimiter({"chat": "1000000/minute"})
    for _ in range(30):
        await limiter.hit("chat", "key")
        await asyncio.sleep(0.002)
    assert started == []


async def test_the_memory_limiter_refuses_with_its_headers() -> None:
    limiter = RateLimiter({"chat": "2/minute"})
    await limiter.hit("chat", "a")
    await limiter.hit("chat", "a")
    with pytest.raises(RateLimitedError) as info:
        await limiter.hit("chat", "a")
    headers = info.value.headers
    assert headers["X-RateLimit-Limit"] == "2"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["Retry-After"]) <= 60
    await limiter.hit("chat", "b")

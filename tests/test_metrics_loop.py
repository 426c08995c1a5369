"""`/metrics` shows a blocked event loop (lag gauge) and the asyncio task count."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from symposia.container import Container
from symposia.observability.metrics import LoopLagMonitor

BLOCK_SECONDS = 0.3


async def _gauge(client: httpx.AsyncClient, name: str) -> float:
    response = await client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        if family.name == name:
            (sample,) = family.samples
            return float(sample.value)
    raise AssertionError(f"{name} is not in /metrics")


async def test_a_blocked_loop_raises_the_lag_gauge(
    client: httpx.AsyncClient, container: Container
) -> None:
    monitor = container.metrics.loop_lag
    await asyncio.sleep(monitor.interval * 2)  # the monitor has woken on time at least once
    assert await _gauge(client, "symposia_event_loop_lag_seconds") < BLOCK_SECONDS / 2
    # Blocking past the monitor's next wake-up, whatever its phase, makes it at least
    # BLOCK_SECONDS late.
    time.sleep(monitor.interval + BLOCK_SECONDS)  # noqa: ASYNC251 - the point of the test
    lag = await _gauge(client, "symposia_event_loop_lag_seconds")
    assert BLOCK_SECONDS <= lag < 5
    await asyncio.sleep(monitor.interval * 2)
    # Still shown after the loop recovered: a scrape every few seconds must not miss it.
    assert await _gauge(client, "symposia_event_loop_lag_seconds") >= BLOCK_SECONDS


async def test_lag_window_forgets_an_old_block() -> None:
    monitor = LoopLagMonitor(interval=0.02, window=0.1)
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # noqa: ASYNC251
        await asyncio.sleep(0.01)
        assert monitor.lag() >= 0.15
        await asyncio.sleep(0.3)  # more than the window of on-time wake-ups
        assert monitor.lag() < 0.15
    finally:
        await monitor.stop()
    assert monitor.lag() < 0.15


async def test_task_gauge_counts_the_loops_tasks(client: httpx.AsyncClient) -> None:
    before = await _gauge(client, "symposia_asyncio_tasks")
    assert before >= 2  # at least this test and the lag monitor
    sleepers = [asyncio.create_task(asyncio.sleep(30)) for _ in range(25)]
    try:
        assert await _gauge(client, "symposia_asyncio_tasks") >= before + 25
    finally:
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
    assert await _gauge(client, "symposia_asyncio_tasks") <= before

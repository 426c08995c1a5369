"""Prometheus metrics, in a registry of the app's own (tests build many apps)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LOOP_LAG_INTERVAL_SECONDS = 0.5
# The gauge shows the worst lag of this window, so a scrape every 15 s sees a short block.
LOOP_LAG_WINDOW_SECONDS = 15.0


class LoopLagMonitor:
    """Measures how late the event loop wakes a task that asked to sleep `interval` seconds.

    A loop blocked by synchronous work (a long replay, a CPU-bound call) wakes the task
    late by as long as it was blocked. Read at scrape time, the lag is the worst wake-up
    delay of the last `window` seconds, or how overdue the next wake-up is if that is worse.
    """

    def __init__(
        self,
        interval: float = LOOP_LAG_INTERVAL_SECONDS,
        window: float = LOOP_LAG_WINDOW_SECONDS,
    ) -> None:
        self.interval = interval
        self._lags: deque[float] = deque(maxlen=max(1, round(window / interval)))
        self._due: float | None = None
        self._task: asyncio.Task[None] | None = None

    def lag(self) -> float:
        overdue = 0.0 if self._due is None else time.monotonic() - self._due
        return max(overdue, *self._lags, 0.0)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="symposia-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._due = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            self._due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            self._lags.append(max(0.0, time.monotonic() - self._due))


def asyncio_task_count() -> float:
    """Tasks alive on the running loop (NaN when read outside one)."""
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:
        return float("nan")


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # Labelled children by their labels, for the per-call counts of the relay.
        self._provider_timed: dict[str, tuple[Histogram, Histogram]] = {}
        self._tokens: dict[tuple[str, str], Counter] = {}
        self.http_requests = Counter(
            "symposia_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "symposia_http_request_duration_seconds",
            "HTTP request duration (streams: until they end)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sse_streams = Gauge("symposia_sse_streams_active", "Open SSE streams", registry=r)
        self.ws_sockets = Gauge("symposia_websockets_active", "Open WebSockets", registry=r)
        self.ws_connections = Counter(
            "symposia_websockets",
            "WebSockets by route and close code (a refused handshake: its HTTP status)",
            ["route", "code"],
            registry=r,
        )
        self.ws_commands = Counter(
            "symposia_websocket_commands",
            "Commands sent over WebSockets, by route, command and status",
            ["route", "command", "status"],
            registry=r,
        )
        self.runs_active = Gauge("symposia_runs_active", "Runs going on now", registry=r)
        self.tokens = Counter(
            "symposia_tokens_streamed",
            "Text deltas streamed to clients, by provider and model",
            ["provider", "model"],
            registry=r,
        )
        self.provider_ttft = Histogram(
            "symposia_provider_time_to_first_token_seconds",
            "Provider time to first token",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_total = Histogram(
            "symposia_provider_call_seconds",
            "Provider call duration",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "symposia_provider_errors",
            "Failed provider attempts by provider and code",
            ["provider", "code"],
            registry=r,
        )
        self.spend = Counter(
            "symposia_spend_usd",
            "US dollars spent on provider calls (the usage ledger's costs), by API key "
            "(`-` for other principals) and model",
            ["key", "model"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "symposia_key_refusals",
            "Provider calls refused by a key's limits, by reason",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "symposia_rate_limit_rejections",
            "Requests refused by a rate limit",
            ["scope"],
            registry=r,
        )
        self.loop_lag = LoopLagMonitor()
        self.event_loop_lag = Gauge(
            "symposia_event_loop_lag_seconds",
            "How late the event loop woke a periodic timer (a blocked loop shows here)",
            registry=r,
        )
        self.event_loop_lag.set_function(self.loop_lag.lag)
        self.asyncio_tasks = Gauge(
            "symposia_asyncio_tasks", "asyncio tasks alive, read at scrape time", registry=r
        )
        self.asyncio_tasks.set_function(asyncio_task_count)
        self.redis_fallbacks = Counter(
            "symposia_rate_limit_redis_fallbacks",
            "Requests let through because the rate-limit Redis was unreachable",
            registry=r,
        )

    def count_tokens(self, provider: str, model: str, deltas: int) -> None:
        """Count text deltas that reached a consumer, under `provider` and `model`."""
        counter = self._tokens.get((provider, model))
        if counter is None:
            counter = self._tokens[provider, model] = self.tokens.labels(provider, model)
        counter.inc(deltas)

    def watch(self, sse_streams: Callable[[], float], runs_active: Callable[[], float]) -> None:
        """Gauges read at scrape time from the parts that know the numbers."""
        self.sse_streams.set_function(sse_streams)
        self.runs_active.set_function(runs_active)

    def provider_call(self, provider: str, status: str, ttft: float | None, total: float) -> None:
        timed = self._provider_timed.get(provider)
        if timed is None:  # `labels()` checks and locks on every call: its children kept
            timed = (self.provider_ttft.labels(provider), self.provider_total.labels(provider))
            self._provider_timed[provider] = timed
        if ttft is not None:
            timed[0].observe(ttft)
        timed[1].observe(total)
        if status != "ok":
            self.provider_errors.labels(provider, status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

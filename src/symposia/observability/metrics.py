"""Prometheus metrics, in a registry of the app's own (tests build many apps)."""

from __future__ import annotations

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


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.rate_limited = Counter(
            "symposia_rate_limit_rejections",
            "Requests refused by a rate limit",
            ["scope"],
            registry=r,
        )
        self.redis_fallbacks = Counter(
            "symposia_rate_limit_redis_fallbacks",
            "Requests let through because the rate-limit Redis was unreachable",
            registry=r,
        )

    def watch(self, sse_streams: Callable[[], float], runs_active: Callable[[], float]) -> None:
        """Gauges read at scrape time from the parts that know the numbers."""
        self.sse_streams.set_function(sse_streams)
        self.runs_active.set_function(runs_active)

    def provider_call(self, provider: str, status: str, ttft: float | None, total: float) -> None:
        if ttft is not None:
            self.provider_ttft.labels(provider).observe(ttft)
        self.provider_total.labels(provider).observe(total)
        if status != "ok":
            self.provider_errors.labels(provider, status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

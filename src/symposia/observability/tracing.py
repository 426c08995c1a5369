"""OpenTelemetry tracing: off unless an OTLP endpoint is named, and free when off.

On when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and
OTEL_SDK_DISABLED is not `true`. Then spans go over OTLP/HTTP (protobuf) through the
official SDK, which reads the standard variables itself (OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_EXPORTER_OTLP_*_HEADERS,
OTEL_BSP_*...), and W3C `traceparent` is read from clients and sent upstream.

Off, the SDK is never imported, FastAPI's request spans stay off, and every seam of
Symposia's own (`genai_spans`) costs one read of `TRACER`, which is None.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate

from symposia import __version__

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = [
    "CAPTURE_CONTENT",
    "TRACER",
    "capture_content",
    "configure",
    "enabled_by",
    "fastapi_telemetry",
    "flush",
    "install",
    "outgoing_headers",
    "reset",
]

SCOPE = "symposia"
DEFAULT_SERVICE_NAME = "symposia"
# The GenAI conventions' switch for prompts and completions on spans: off unless `true`.
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
FLUSH_MILLIS = 5000

# The process's tracer while tracing is on; None when off (what every seam checks).
TRACER: Tracer | None = None
_provider: TracerProvider | None = None
_capture = False


def enabled_by(environ: Mapping[str, str]) -> bool:
    """The enabling rule (docs/tracing.md): an OTLP endpoint, and the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINTS)


def configure(environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """The process's tracer provider: the one already installed, else one exporting over
    OTLP/HTTP when `enabled_by(environ)`, else None (tracing off)."""
    if _provider is not None:
        return _provider
    if not enabled_by(environ):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider, environ)
    return provider


def install(provider: TracerProvider, environ: Mapping[str, str] = os.environ) -> None:
    """Trace into `provider` from now on (tests install one with an in-memory exporter)."""
    global TRACER, _provider, _capture
    _provider = provider
    _capture = environ.get(CAPTURE_CONTENT, "").strip().lower() == "true"
    TRACER = provider.get_tracer(SCOPE, __version__)


def reset() -> None:
    """Tracing off again (tests); the provider is the installer's to shut down."""
    global TRACER, _provider, _capture
    TRACER, _provider, _capture = None, None, False


def capture_content() -> bool:
    """Whether prompts and completions go on spans (CAPTURE_CONTENT=true)."""
    return _capture


def flush() -> None:
    """Send what is buffered (at shutdown: the batch processor would drop it)."""
    if _provider is not None:
        _provider.force_flush(FLUSH_MILLIS)


def fastapi_telemetry(provider: TracerProvider | None) -> TelemetryConfig:
    """FastAPI's native HTTP server spans (traceparent read, `{method} {route}`, status),
    on `provider` when tracing is on; nothing else of FastAPI's telemetry (its metrics
    and logs are Symposia's own, and its per-dependency spans cost on every request)."""
    return {
        "tracing": provider is not None,
        "tracer_provider": provider,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
    }


def outgoing_headers() -> dict[str, str] | None:
    """The current span's `traceparent` (and `tracestate`, `baggage`) for a provider
    call, or None when tracing is off: what an adapter adds to its request's headers."""
    if TRACER is None:
        return None
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


def inject_into(headers: Any) -> None:
    """Add the current span's propagation headers to a mutable `headers` mapping (a
    botocore request's): for calls made where a header cannot be passed per call."""
    if TRACER is not None:
        propagate.inject(headers)

"""Issue 25, traces end to end: the app configured only by the standard OTEL_* variables
exports its spans over OTLP/HTTP (protobuf) to a receiver, which decodes them with the
official protobuf definitions (tests/fakes/otlp_receiver.py). A collector or Arize
Phoenix receives the same request; a receiver of our own keeps the test light (Phoenix
brings some sixty packages and a slow start) and lets it read every field sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from symposia.app import create_app
from symposia.container import default_providers
from symposia.observability import tracing
from tests.conftest import remote_settings
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.provider_server import FakeProviderServer, Reply

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
SERVER_KIND, CLIENT_KIND = 2, 3  # the proto's Span.SpanKind numbers


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "symposia-e2e")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        yield running
        provider = tracing.configure({})
        tracing.reset()
        if provider is not None:
            provider.shutdown()


async def test_spans_reach_an_otlp_receiver_over_http(
    receiver: OtlpReceiver, fake_provider: FakeProviderServer, tmp_path: Path
) -> None:
    settings = remote_settings(fake_provider, database_url=f"sqlite:///{tmp_path / 'e2e.db'}")
    app = create_app(settings, default_providers(settings))
    fake_provider.enqueue("openai", Reply(tokens=["Hel", "lo"], prompt_tokens=9))
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with app.router.lifespan_context(app):  # its end flushes the batch
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            answer = await c.post(
                "/v1/chat/completions",
                json={**body, "stream": True},
                headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
            )
            assert answer.status_code == 200, answer.text
    assert receiver.requests >= 1
    assert set(receiver.content_types) == {"application/x-protobuf"}
    by_name = {span.name: span for span in receiver.spans}
    server, chat = by_name["POST /v1/chat/completions"], by_name["chat gpt-4o-mini"]
    assert (server.trace_id, server.parent_span_id, server.kind) == (
        TRACE_ID,
        CLIENT_SPAN,
        SERVER_KIND,
    )
    assert (chat.trace_id, chat.parent_span_id, chat.kind) == (
        TRACE_ID,
        server.span_id,
        CLIENT_KIND,
    )
    assert chat.scope == "symposia"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 9
    assert chat.attributes["gen_ai.usage.output_tokens"] == 2
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert chat.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert "gen_ai.first_chunk" in chat.events
    assert chat.resource["service.name"] == "symposia-e2e"
    assert chat.resource["deployment.environment.name"] == "test"
    (sent,) = fake_provider.requests_to("openai")
    assert sent.headers["traceparent"] == f"00-{TRACE_ID}-{chat.span_id}-01"

"""Bedrock through boto3: the real botocore parser and signer, fed by Stubber or wire bytes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from symposia.errors import ProviderError
from symposia.providers.base import ChatMessage, CompletionRequest, StreamEnd, TextDelta
from symposia.providers.bedrock import BedrockAdapter
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from tests.fakes.bedrock_wire import exception, serve_stream, text_stream

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret-test",
    )


def _request(*messages: ChatMessage) -> CompletionRequest:
    return CompletionRequest(MODEL, list(messages), temperature=0.4, max_tokens=50)


async def test_stream_text_usage_and_request_shape(client: Any) -> None:
    seen: list[Any] = []
    serve_stream(client, text_stream(["Hel", "lo ", "ü"], input_tokens=12), seen)
    adapter = BedrockAdapter("us-east-1", client_factory=lambda: client)
    deltas = [
        d
        async for d in adapter.stream(
            _request(
                ChatMessage("system", "Be kind."),
                ChatMessage("assistant", "I open."),
                ChatMessage("user", "Ada: hi"),
                ChatMessage("user", "Bert: hello"),
            )
        )
    ]
    assert [d.text for d in deltas if isinstance(d, TextDelta)] == ["Hel", "lo ", "ü"]
    assert deltas[-1] == StreamEnd("stop", prompt_tokens=12, completion_tokens=3)
    body = seen[0]
    assert body["system"] == [{"text": "Be kind."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [{"text": "Ada: hi\n\nBert: hello"}]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.4}


@pytest.mark.parametrize(
    ("code", "status", "retryable", "our_code"),
    [
        ("ThrottlingException", 429, True, "rate_limited"),
        ("ServiceUnavailableException", 503, True, "provider_unavailable"),
        ("ValidationException", 400, False, "bad_request"),
        ("AccessDeniedException", 403, False, "permission_denied"),
        ("ResourceNotFoundException", 404, False, "model_not_found"),
    ],
)
async def test_client_errors_map_to_failures(
    client: Any, code: str, status: int, retryable: bool, our_code: str
) -> None:
    adapter = BedrockAdapter("us-east-1", client_factory=lambda: client)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "converse_stream",
            service_error_code=code,
            service_message="nope",
            http_status_code=status,
        )
        with pytest.raises(ProviderError) as info:
            async for _ in adapter.stream(_request(ChatMessage("user", "hi"))):
                pass
    failure = info.value.failure
    assert (failure.status, failure.retryable, failure.code) == (status, retryable, our_code)
    assert failure.provider == "bedrock"


async def test_throttling_is_retried_by_the_one_policy(client: Any) -> None:
    adapter = BedrockAdapter("us-east-1", client_factory=lambda: client)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    call = ModelCall(
        ProviderRegistry([adapter]),
        RetryPolicy(3, base_delay=1.0, jitter=0),
        Timeouts(5, 5),
        [f"bedrock/{MODEL}"],
        _request(ChatMessage("user", "hi")),
        sleep=sleep,
    )
    with Stubber(client) as stubber:
        for _ in range(3):
            stubber.add_client_error(
                "converse_stream", service_error_code="ThrottlingException", http_status_code=429
            )
        with pytest.raises(ProviderError):
            async for _ in call:
                pass
        stubber.assert_no_pending_responses()
    assert sleeps == [1.0, 2.0]


async def test_error_event_after_text_is_not_retried(client: Any) -> None:
    adapter = BedrockAdapter("us-east-1", client_factory=lambda: client)
    frames = [*text_stream(["partial"])[:2], exception("modelStreamErrorException", "boom")]
    serve_stream(client, frames)
    call = ModelCall(
        ProviderRegistry([adapter]),
        RetryPolicy(3, base_delay=0),
        Timeouts(5, 5),
        [f"bedrock/{MODEL}"],
        _request(ChatMessage("user", "hi")),
    )
    received = []
    with pytest.raises(ProviderError) as info:
        async for delta in call:
            received.append(delta)
    assert received == [TextDelta("partial")]
    assert info.value.failure.status == 500
    assert len(call.attempts) == 1


def test_not_configured_without_region_or_client() -> None:
    assert not BedrockAdapter(None).configured

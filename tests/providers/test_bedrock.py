"""Bedrock through boto3 against the fake Bedrock Runtime on loopback: real signing, HTTP,
event-stream parsing and error mapping, with the provider's faults on the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from symposia.errors import ProviderError, ProviderFailure, UnsupportedParameterError
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    ResponseFormat,
    StreamEnd,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from symposia.providers.bedrock import BedrockAdapter
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import ModelCall, RetryPolicy, Timeouts
from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.helpers import eventually

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ACCESS_KEY_ID = "AKIATESTBEDROCK00001"
# A consumer that leaves must close the upstream connection within this.
LEAVE_SECONDS = 0.5


@pytest.fixture
def adapter(fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> BedrockAdapter:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-test-bedrock")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return BedrockAdapter("us-east-1", endpoint_url=fake_provider.bedrock_endpoint_url)


def _request(*messages: ChatMessage) -> CompletionRequest:
    return CompletionRequest(MODEL, list(messages), temperature=0.4, max_tokens=50)


async def _drain(stream: AsyncIterator[Delta]) -> tuple[list[Delta], ProviderFailure | None]:
    received: list[Delta] = []
    try:
        async for delta in stream:
            received.append(delta)
    except ProviderError as exc:
        return received, exc.failure
    return received, None


def _texts(deltas: list[Delta]) -> list[str]:
    return [d.text for d in deltas if isinstance(d, TextDelta)]


async def test_stream_text_usage_and_request_shape(
    adapter: BedrockAdapter, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("bedrock", Reply(tokens=["Hel", "lo ", "ü"], prompt_tokens=12))
    request = _request(
        ChatMessage("system", "Be kind."),
        ChatMessage("assistant", "I open."),
        ChatMessage("user", "Ada: hi"),
        ChatMessage("user", "Bert: hello"),
    )
    deltas, failure = await _drain(adapter.stream(request))
    assert failure is None
    assert _texts(deltas) == ["Hel", "lo ", "ü"]
    assert deltas[-1] == StreamEnd("stop", prompt_tokens=12, completion_tokens=3)
    (sent,) = fake_provider.requests_to("bedrock")
    assert sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert sent.body["system"] == [{"text": "Be kind."}]
    assert [m["role"] for m in sent.body["messages"]] == ["user", "assistant", "user"]
    assert sent.body["messages"][2]["content"] == [{"text": "Ada: hi\n\nBert: hello"}]
    assert sent.body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.4}


@pytest.mark.parametrize(
    ("reply", "status", "retryable", "our_code"),
    [
        (Reply(status=429), 429, True, "rate_limited"),  # ThrottlingException
        (Reply(status=429, error_type="ModelNotReadyException"), 503, True, "provider_unavailable"),
        (Reply(status=503), 503, True, "provider_unavailable"),  # ServiceUnavailableException
        (Reply(status=500), 500, True, "provider_unavailable"),  # InternalServerException
        (Reply(status=408), 408, True, "timeout"),  # ModelTimeoutException
        (Reply(status=400), 400, False, "bad_request"),  # ValidationException
        (Reply(status=403), 403, False, "permission_denied"),  # AccessDeniedException
        (Reply(status=404), 404, False, "model_not_found"),  # ResourceNotFoundException
        (Reply(status=401), 401, False, "invalid_api_key"),  # 403 UnrecognizedClientException
    ],
    ids=lambda value: value.error_type or value.status if isinstance(value, Reply) else None,
)
async def test_aws_errors_map_to_failures_in_one_request(
    adapter: BedrockAdapter,
    fake_provider: FakeProviderServer,
    reply: Reply,
    status: int,
    retryable: bool,
    our_code: str,
) -> None:
    fake_provider.enqueue("bedrock", reply, Reply())
    deltas, failure = await _drain(adapter.stream(_request(ChatMessage("user", "hi"))))
    assert deltas == []
    assert failure is not None
    assert (failure.status, failure.retryable, failure.code) == (status, retryable, our_code)
    assert failure.provider == "bedrock"
    # botocore's own retries are off: our one policy decides.
    assert len(fake_provider.requests_to("bedrock")) == 1


async def test_throttling_is_retried_by_the_one_policy_with_backoff(
    adapter: BedrockAdapter, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("bedrock", *[Reply(status=429)] * 3)
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
    _, failure = await _drain(call)
    assert failure is not None
    assert failure.code == "rate_limited"
    assert failure.retry_after is None  # Bedrock sends no Retry-After
    assert sleeps == [1.0, 2.0]
    assert len(fake_provider.requests_to("bedrock")) == 3


@pytest.mark.parametrize(
    ("reply", "text", "our_code", "status"),
    [
        (
            Reply(
                error_event={"type": "modelStreamErrorException", "message": "boom"}, error_after=1
            ),
            ["Hello"],
            "provider_unavailable",
            500,
        ),
        (
            Reply(error_event={"type": "throttlingException", "message": "slow"}, error_after=2),
            ["Hello", ","],
            "rate_limited",
            429,
        ),
        (Reply(cut_after=2), ["Hello", ","], "stream_error", None),
        (Reply(malformed_at=1), ["Hello"], "stream_error", None),  # a frame's CRC is wrong
    ],
    ids=["modelStreamErrorException", "throttlingException", "cut", "bad_checksum"],
)
async def test_a_failure_after_text_keeps_the_text_and_is_not_retried(
    adapter: BedrockAdapter,
    fake_provider: FakeProviderServer,
    reply: Reply,
    text: list[str],
    our_code: str,
    status: int | None,
) -> None:
    fake_provider.enqueue("bedrock", reply, Reply())
    call = ModelCall(
        ProviderRegistry([adapter]),
        RetryPolicy(3, base_delay=0),
        Timeouts(5, 5),
        [f"bedrock/{MODEL}"],
        _request(ChatMessage("user", "hi")),
    )
    deltas, failure = await _drain(call)
    assert _texts(deltas) == text
    assert failure is not None
    assert (failure.code, failure.status) == (our_code, status)
    assert len(fake_provider.requests_to("bedrock")) == 1


async def test_unreachable_endpoint_is_a_retryable_connection_error(
    fake_provider: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-test-bedrock")
    port = fake_provider.port
    await fake_provider.stop()  # nothing listens there now
    adapter = BedrockAdapter("us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
    _, failure = await _drain(adapter.stream(_request(ChatMessage("user", "hi"))))
    assert failure is not None
    assert (failure.code, failure.retryable) == ("connection_error", True)


async def test_split_utf8_is_byte_exact(
    adapter: BedrockAdapter, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("bedrock", Reply(tokens=["é€", "😀 ok"], split_utf8=True))
    deltas, failure = await _drain(adapter.stream(_request(ChatMessage("user", "hi"))))
    assert failure is None
    assert _texts(deltas) == ["é€", "😀 ok"]


async def test_a_consumer_that_leaves_mid_stream_closes_the_upstream(
    adapter: BedrockAdapter, fake_provider: FakeProviderServer
) -> None:
    """The worker thread is blocked reading a stalled stream: leaving must wake it."""
    fake_provider.enqueue("bedrock", Reply(stall_after=1))
    stream = adapter.stream(_request(ChatMessage("user", "hi")))
    assert await anext(stream) == TextDelta("Hello")
    await stream.aclose()
    await eventually(lambda: fake_provider.disconnects, within=LEAVE_SECONDS)


def test_not_configured_without_region_or_client() -> None:
    assert not BedrockAdapter(None).configured


async def test_tools_map_to_tool_config_and_tool_use_blocks_with_ids_kept(
    adapter: BedrockAdapter, fake_provider: FakeProviderServer
) -> None:
    """Issue 13: the model's `toolUse` blocks stream as tool-call deltas; the history's
    calls and results go up as `toolUse` and `toolResult` blocks, ids preserved."""
    call = FakeToolCall("tooluse_1", "get_weather", ('{"city"', ': "Paris"}'))
    fake_provider.enqueue("bedrock", Reply(tokens=["Let me see."], tool_calls=[call]))
    weather = Tool("get_weather", "The weather.", {"type": "object", "properties": {}})
    request = CompletionRequest(
        MODEL,
        [
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", "", tool_calls=(ToolCall("t0", "get_weather", "{}"),)),
            ChatMessage("tool", "Rain", tool_call_id="t0"),
        ],
        tools=(weather,),
        tool_choice="required",
    )
    deltas, failure = await _drain(adapter.stream(request))
    assert failure is None
    assert [d for d in deltas if isinstance(d, ToolCallDelta)] == [
        ToolCallDelta(0, "tooluse_1", "get_weather"),
        ToolCallDelta(0, arguments='{"city"'),
        ToolCallDelta(0, arguments=': "Paris"}'),
    ]
    assert isinstance(deltas[-1], StreamEnd)
    assert deltas[-1].finish_reason == "tool_calls"
    (sent,) = fake_provider.requests_to("bedrock")
    assert sent.body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "The weather.",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    assert sent.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t0", "name": "get_weather", "input": {}}}],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "t0", "content": [{"text": "Rain"}]}}],
        },
    ]


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"tool_choice": "none"}, "tool_choice"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ],
)
async def test_what_converse_cannot_express_is_refused(
    adapter: BedrockAdapter, changes: dict[str, Any], parameter: str
) -> None:
    request = CompletionRequest(MODEL, [ChatMessage("user", "hi")], tools=(Tool("t"),), **changes)
    with pytest.raises(UnsupportedParameterError) as info:
        await _drain(adapter.stream(request))
    assert info.value.field == parameter


async def test_structured_output_is_a_forced_tool_whose_input_is_the_text(
    adapter: BedrockAdapter, fake_provider: FakeProviderServer
) -> None:
    call = FakeToolCall("tooluse_2", "Weather", ('{"sunny"', ": true}"))
    fake_provider.enqueue("bedrock", Reply(tokens=[], tool_calls=[call]))
    schema = {"type": "object", "properties": {"sunny": {"type": "boolean"}}}
    request = CompletionRequest(
        MODEL,
        [ChatMessage("user", "Sunny?")],
        response_format=ResponseFormat("json_schema", "Weather", schema),
    )
    deltas, failure = await _drain(adapter.stream(request))
    assert failure is None
    assert "".join(_texts(deltas)) == '{"sunny": true}'
    assert not any(isinstance(d, ToolCallDelta) for d in deltas)
    assert isinstance(deltas[-1], StreamEnd)
    assert deltas[-1].finish_reason == "stop"
    (sent,) = fake_provider.requests_to("bedrock")
    assert sent.body["toolConfig"]["toolChoice"] == {"tool": {"name": "Weather"}}
    assert sent.body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}

"""AWS Bedrock through boto3's `converse_stream`, run in a thread (boto3 blocks).

Optional: `pip install 'symposia[bedrock]'`. Credentials come from the usual AWS chain;
the region from `AWS_REGION`. Bedrock's Converse API wants the system prompt apart and
alternating roles, the user first, like Anthropic's.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from symposia.errors import ProviderError, ProviderFailure
from symposia.providers.base import (
    CompletionRequest,
    Delta,
    StreamEnd,
    TextDelta,
    system_and_alternating,
)
from symposia.providers.failures import connection_failure, from_status, stream_failure
from symposia.providers.packages import installed
from symposia.providers.registry import ensure_configured
from symposia.providers.threaded import iterate_in_thread

KEY_ENV = "AWS_REGION and AWS credentials"
STOP_REASONS = {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop"}
# Error codes Bedrock may send inside a stream, by the HTTP status they stand for.
STREAM_ERROR_STATUS = {
    "throttlingException": 429,
    "ThrottlingException": 429,
    "serviceUnavailableException": 503,
    "ServiceUnavailableException": 503,
    "internalServerException": 500,
    "InternalServerException": 500,
    "modelStreamErrorException": 500,
    "ModelStreamErrorException": 500,
    "validationException": 400,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelNotReadyException": 503,
}


def boto3_available() -> bool:
    return installed("boto3")


class BedrockAdapter:
    name = "bedrock"

    def __init__(self, region: str | None, client_factory: Callable[[], Any] | None = None) -> None:
        self._region = region
        self._factory = client_factory
        self._client: Any = None

    @property
    def configured(self) -> bool:
        return self._factory is not None or (self._region is not None and boto3_available())

    @property
    def client(self) -> Any:
        if self._client is None:
            if self._factory is not None:
                self._client = self._factory()
            else:
                import boto3

                self._client = boto3.client("bedrock-runtime", region_name=self._region)
        return self._client

    def check_model(self, model: str) -> None:
        ensure_configured(self.name, self.configured, KEY_ENV)

    async def models(self) -> list[str]:
        return []  # listing needs the separate `bedrock` control-plane client and permissions

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        system, turns = system_and_alternating(request.messages)
        params: dict[str, Any] = {
            "modelId": request.model,
            "messages": [{"role": m.role, "content": [{"text": m.content}]} for m in turns],
            "inferenceConfig": {
                "maxTokens": request.max_tokens,
                "temperature": min(request.temperature, 1.0),
            },
        }
        if system:
            params["system"] = [{"text": system}]
        if request.top_p is not None:
            params["inferenceConfig"]["topP"] = request.top_p
        if request.stop:
            params["inferenceConfig"]["stopSequences"] = list(request.stop)
        return params

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        ensure_configured(self.name, self.configured, KEY_ENV)

        def produce(emit: Callable[[Delta], None], stop: threading.Event) -> None:
            try:
                self._produce(request, emit, stop)
            except ProviderError:
                raise
            except Exception as exc:
                raise ProviderError(_failure(exc, request.model)) from exc

        async for delta in iterate_in_thread(produce):
            yield delta

    def _produce(
        self, request: CompletionRequest, emit: Callable[[Delta], None], stop: threading.Event
    ) -> None:
        response = self.client.converse_stream(**self._params(request))
        finish: str | None = None
        usage: dict[str, int] = {}
        for event in response["stream"]:
            if stop.is_set():
                break
            if "contentBlockDelta" in event:
                text = event["contentBlockDelta"]["delta"].get("text")
                if text:
                    emit(TextDelta(text))
            elif "messageStop" in event:
                reason = event["messageStop"].get("stopReason")
                finish = STOP_REASONS.get(reason, reason)
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {})
            else:
                error = next((key for key in event if key in STREAM_ERROR_STATUS), None)
                if error is not None:
                    message = str(event[error].get("message", error))
                    raise ProviderError(
                        _status_failure(STREAM_ERROR_STATUS[error], message, request.model)
                    )
        emit(
            StreamEnd(
                finish,
                prompt_tokens=usage.get("inputTokens"),
                completion_tokens=usage.get("outputTokens"),
            )
        )


def _status_failure(status: int, message: str, model: str) -> ProviderFailure:
    return from_status(status, message, provider="bedrock", model=model, key_env=KEY_ENV)


def _failure(exc: Exception, model: str) -> ProviderFailure:
    """botocore's ClientError carries the HTTP status and an error code; others are transport."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        status = STREAM_ERROR_STATUS.get(code, status)
        if isinstance(status, int) and status >= 400:
            return _status_failure(status, str(error.get("Message", code)), model)
        return stream_failure("bedrock", model, code or type(exc).__name__)
    return connection_failure("bedrock", model, type(exc).__name__)

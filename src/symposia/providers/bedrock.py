"""AWS Bedrock through boto3's `converse_stream`, run in a thread (boto3 blocks).

Optional: `pip install 'symposia[bedrock]'`. Credentials come from the usual AWS chain;
the region from `AWS_REGION`; `BEDROCK_ENDPOINT_URL` points boto3 elsewhere (a VPC
endpoint, a proxy, a test's fake). Bedrock's Converse API wants the system prompt apart
and alternating roles, the user first, like Anthropic's; tools are its `toolConfig`, and
`toolUse`/`toolResult` content blocks with the ids preserved.

botocore's own retries are off: the one retry policy (`resilience`) decides, from the
`ProviderFailure` each botocore error is mapped to here. A consumer that leaves shuts the
response's socket, so the thread blocked reading it ends at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from symposia.errors import ProviderError, ProviderFailure, UnsupportedParameterError
from symposia.observability.tracing import inject_into
from symposia.providers.base import (
    PROVIDER_MAX_TOKENS_DEFAULT,
    CompletionRequest,
    Delta,
    Feature,
    StreamEnd,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from symposia.providers.failures import connection_failure, from_status, stream_failure
from symposia.providers.packages import installed
from symposia.providers.registry import ensure_configured
from symposia.providers.request_fields import ProviderKind
from symposia.providers.threaded import iterate_in_thread
from symposia.providers.tool_turns import (
    NO_PARAMETERS,
    ToolResult,
    Turn,
    answer_tool,
    arguments_of,
    block_turns,
)

KEY_ENV = "AWS_REGION and AWS credentials"
SERVICE = "bedrock-runtime"
STOP_REASONS = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
# The tool_choice values Converse has ("none" and parallel_tool_calls it has not).
TOOL_CHOICES: dict[str, dict[str, Any]] = {"auto": {"auto": {}}, "required": {"any": {}}}
# Seconds boto3 waits to connect, and for any read (the first byte included); our own
# first-token and idle timeouts are shorter and end the call first.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 300.0
# Bedrock's error codes (x-amzn-ErrorType, or an in-stream exception's name) by the HTTP
# status whose rules they follow. Mostly botocore's service model; the credential errors
# come as 403 but mean what a 401 means, and a model still loading is worth a retry.
ERROR_STATUS: Mapping[str, int] = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelStreamErrorException": 500,  # 424 in the model, but "retry your request"
    "ModelNotReadyException": 503,
    "ModelTimeoutException": 408,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "UnrecognizedClientException": 401,
    "InvalidSignatureException": 401,
    "IncompleteSignatureException": 401,
    "MissingAuthenticationTokenException": 401,
    "ExpiredTokenException": 401,
}


def boto3_available() -> bool:
    return installed("boto3")


def error_status(code: str, http_status: object) -> int | None:
    """The status a Bedrock error code stands for (in-stream names are camelCase)."""
    status = ERROR_STATUS.get(code[:1].upper() + code[1:])
    if status is None and isinstance(http_status, int) and http_status >= 400:
        return http_status
    return status


class BedrockAdapter:
    """Sends `max_tokens_default` (PROVIDER_MAX_TOKENS_DEFAULT) when a request sets none."""

    name = "bedrock"
    kind: ProviderKind = "bedrock"
    features: frozenset[Feature] = frozenset({"tools", "response_format", "temperature", "top_p"})

    def __init__(
        self,
        region: str | None,
        client_factory: Callable[[], Any] | None = None,
        *,
        endpoint_url: str | None = None,
        max_tokens_default: int = PROVIDER_MAX_TOKENS_DEFAULT,
    ) -> None:
        self._region = region
        self.max_tokens_default = max_tokens_default
        self._factory = client_factory
        self._endpoint_url = endpoint_url
        self._client: Any = None
        self._client_lock = threading.Lock()  # the client is made in a worker thread

    @property
    def configured(self) -> bool:
        return self._factory is not None or (self._region is not None and boto3_available())

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                client = self._factory() if self._factory is not None else self._new()
                # The call's `traceparent` when tracing is on: boto3 takes no header per
                # call, so it is added as the request is signed, from the thread's context.
                client.meta.events.register(f"before-sign.{SERVICE}.ConverseStream", _traced)
                self._client = client
            return self._client

    def _new(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # ours decide
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )
        # A session of its own: boto3's default session is not safe across threads.
        return boto3.session.Session().client(
            SERVICE,
            region_name=self._region,
            endpoint_url=self._endpoint_url,
            config=config,
        )

    def check_model(self, model: str) -> None:
        ensure_configured(self.name, self.configured, KEY_ENV)

    async def models(self) -> list[str]:
        return []  # listing needs the separate `bedrock` control-plane client and permissions

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        system, turns = block_turns(request.messages)
        params: dict[str, Any] = {
            "modelId": request.model,
            "messages": [{"role": t.role, "content": _content(t)} for t in turns],
            # Sent whether or not the caller set it: models' own limits on Bedrock are low.
            "inferenceConfig": {"maxTokens": request.max_tokens or self.max_tokens_default},
        }
        if request.temperature is not None:
            params["inferenceConfig"]["temperature"] = min(request.temperature, 1.0)
        if system:
            params["system"] = [{"text": system}]
        if request.top_p is not None:
            params["inferenceConfig"]["topP"] = request.top_p
        if request.stop:
            params["inferenceConfig"]["stopSequences"] = list(request.stop)
        if request.tools or any(m.tool_calls for m in request.messages):
            params["toolConfig"] = _tool_config(request)
        forced = answer_tool(request, self.name)
        if forced is not None:  # structured output: a tool the model must call
            params["toolConfig"] = {
                "tools": [_tool_spec(forced)],
                "toolChoice": {"tool": {"name": forced.name}},
            }
        return params

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        ensure_configured(self.name, self.configured, KEY_ENV)
        call = _Call(self, request, self._params(request))  # bad input raises here
        try:
            async for delta in iterate_in_thread(call.produce):
                yield delta
        finally:
            call.abort()


class _Call:
    """One ConverseStream call in its worker thread, and its way out from the loop."""

    def __init__(
        self, adapter: BedrockAdapter, request: CompletionRequest, params: dict[str, Any]
    ) -> None:
        self._adapter = adapter
        self._request = request
        self._params = params
        self._stop = threading.Event()
        self._stream: Any = None  # botocore's EventStream, once the response has begun

    def abort(self) -> None:
        """The consumer left: end the thread's blocking read by shutting the socket."""
        self._stop.set()
        _shut(self._stream)

    def produce(self, emit: Callable[[Delta], None], stop: threading.Event) -> None:
        model = self._request.model
        try:
            self._produce(emit)
        except ProviderError:
            raise
        except Exception as exc:
            if self._stop.is_set():
                return  # our own abort broke the read: nobody is waiting for an error
            raise ProviderError(_failure(exc, model, began=self._stream is not None)) from exc
        finally:
            if self._stream is not None:
                self._stream.close()  # the connection, closed: the upstream sees us leave

    def _produce(self, emit: Callable[[Delta], None]) -> None:
        request = self._request
        response = self._adapter.client.converse_stream(**self._params)
        self._stream = response["stream"]
        if self._stop.is_set():  # left while the call was being made
            _shut(self._stream)
            return
        finish: str | None = None
        usage: dict[str, int] = {}
        ended = False
        calls: dict[int, int] = {}  # the tool call number of each toolUse block
        structured = request.response_format is not None  # the forced tool's input is the text
        for event in self._stream:
            if self._stop.is_set():
                return
            if "contentBlockDelta" in event:
                block = event["contentBlockDelta"]
                text = block["delta"].get("text")
                if text:
                    emit(TextDelta(text))
                piece = block["delta"].get("toolUse", {}).get("input")
                if piece and structured:
                    emit(TextDelta(piece))
                elif piece and (index := calls.get(block["contentBlockIndex"])) is not None:
                    emit(ToolCallDelta(index, arguments=piece))
            elif "contentBlockStart" in event:
                block = event["contentBlockStart"]
                use = block.get("start", {}).get("toolUse")
                if use is not None and not structured:
                    index = calls[block["contentBlockIndex"]] = len(calls)
                    emit(ToolCallDelta(index, use["toolUseId"], use["name"]))
            elif "messageStop" in event:
                ended = True
                reason = event["messageStop"].get("stopReason")
                finish = STOP_REASONS.get(reason, reason)
                if structured and finish == "tool_calls":
                    finish = "stop"  # the forced tool's call is the answer
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {})
        if not ended:
            detail = "the stream ended before messageStop"
            raise ProviderError(stream_failure("bedrock", request.model, detail))
        emit(
            StreamEnd(
                finish,
                prompt_tokens=usage.get("inputTokens"),
                completion_tokens=usage.get("outputTokens"),
            )
        )


def _traced(request: Any, **_: Any) -> None:
    """botocore's hook as a request is signed: the current span's `traceparent` added."""
    inject_into(request.headers)


def _content(turn: Turn) -> list[dict[str, Any]]:
    """A turn's content blocks: text, `toolUse` (an assistant's calls) and `toolResult`
    (a tool's answer, in the user turn after the calls)."""
    if turn.text_only:
        return [{"text": turn.text()}]
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, ToolResult):
            result = {"toolUseId": block.call_id, "content": [{"text": block.content}]}
            content.append({"toolResult": result})
        elif isinstance(block, ToolCall):
            use = {"toolUseId": block.id, "name": block.name, "input": arguments_of(block)}
            content.append({"toolUse": use})
        elif block:
            content.append({"text": block})
    return content


def _tool_config(request: CompletionRequest) -> dict[str, Any]:
    """`toolConfig`; what Converse cannot express is refused rather than dropped."""
    if request.parallel_tool_calls is False:
        raise UnsupportedParameterError(
            "parallel_tool_calls false (or legacy functions) is not supported by the bedrock "
            "provider; send tools and leave parallel_tool_calls unset",
            "parallel_tool_calls",
        )
    choice = request.tool_choice
    if choice == "none":
        raise UnsupportedParameterError(
            'tool_choice "none" is not supported by the bedrock provider; send no tools',
            "tool_choice",
        )
    config: dict[str, Any] = {"tools": [_tool_spec(tool) for tool in request.tools]}
    if choice is not None:
        config["toolChoice"] = TOOL_CHOICES.get(choice) or {"tool": {"name": choice}}
    return config


def _tool_spec(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": tool.parameters or NO_PARAMETERS}
    return {"toolSpec": spec}


def _shut(stream: Any) -> None:
    """Shut the socket under a botocore EventStream, waking a read blocked on it."""
    raw = getattr(stream, "_raw_stream", None)
    shutdown = getattr(raw, "shutdown", None)  # urllib3 >= 2.3
    if shutdown is not None:
        # Already closed or released to the pool: then nothing is blocked on it.
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            shutdown()


def _failure(exc: Exception, model: str, *, began: bool) -> ProviderFailure:
    """botocore's ClientError (EventStreamError too) carries an error code and, before the
    stream, the HTTP status; anything else is the transport: a broken stream once the
    response began, the connection before."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code = str(error.get("Code", ""))
        status = error_status(code, response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
        if status is not None:
            message = str(error.get("Message") or code)
            return from_status(status, message, provider="bedrock", model=model, key_env=KEY_ENV)
        return stream_failure("bedrock", model, code or type(exc).__name__)
    if (missing := _credential_problem(exc, model)) is not None:
        return missing
    if began:
        return stream_failure("bedrock", model, type(exc).__name__)
    return connection_failure("bedrock", model, type(exc).__name__)


# botocore's errors for credentials it could not find or read: no network was involved.
CREDENTIAL_ERRORS = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "ProfileNotFound",
        "CredentialRetrievalError",
        "NoAuthTokenError",
    }
)


def _credential_problem(exc: Exception, model: str) -> ProviderFailure | None:
    """A missing or unreadable AWS credential, said as such (it is no connection error)."""
    if type(exc).__name__ not in CREDENTIAL_ERRORS:
        return None
    return ProviderFailure(
        code="provider_not_configured",
        message=f"bedrock found no usable AWS credentials ({type(exc).__name__}: {exc})",
        provider="bedrock",
        model=model,
        retryable=False,
        suggestion="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
        "or run with an instance or task role",
    )

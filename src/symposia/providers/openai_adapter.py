"""The OpenAI chat-completions wire format, spoken over HTTP directly (aiohttp).

OpenAI itself, OpenRouter and any OpenAI-compatible server (Ollama, vLLM, LM Studio,
Groq, Together) are providers of this one adapter: they differ only in `ProviderConfig`.
The wire protocol is the contract; the official `openai` SDK is not used here (it cost
about 0.9 ms of CPU per request before a byte left), only by the tests as a client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from symposia.errors import ProviderError, ProviderFailure
from symposia.observability.tracing import outgoing_headers
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    Feature,
    ResponseFormat,
    StreamEnd,
    TextDelta,
    Tool,
    ToolCallDelta,
)
from symposia.providers.body_reads import available_chunks
from symposia.providers.config import ProviderConfig
from symposia.providers.failures import (
    connection_failure,
    cut_short,
    from_status,
    not_configured,
    stream_failure,
    timeout_failure,
)
from symposia.providers.http_client import (
    TRANSPORT_ERRORS,
    ProviderHttp,
    error_body,
    transport_failure,
)
from symposia.providers.registry import ensure_configured
from symposia.providers.request_fields import ProviderKind
from symposia.providers.sdk_adapter import SDK_TIMEOUT_SECONDS
from symposia.providers.sse_events import sse_batches
from symposia.providers.text_chunks import TextTemplate

CHAT_COMPLETIONS_PATH = "/chat/completions"
MODELS_PATH = "/models"
# Sent as they are when set, left out (the model's defaults) when not.
OPTIONAL_PARAMETERS = (
    "temperature",
    "max_tokens",
    "top_p",
    "parallel_tool_calls",
    "seed",
    "logprobs",
    "top_logprobs",
)


def wire_message(message: ChatMessage) -> dict[str, Any]:
    """A message as OpenAI's chat completions take it, its tool calls or the call it
    answers included; an assistant's content is null when it only called tools."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def set_fields(source: object, names: tuple[str, ...]) -> dict[str, Any]:
    """`source`'s fields among `names` that are set (not None): only those are sent."""
    return {name: value for name in names if (value := getattr(source, name)) is not None}


def wire_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type == "json_object":
        return {"type": "json_object"}
    spec = {"name": fmt.name, **set_fields(fmt, ("description", "schema", "strict"))}
    return {"type": "json_schema", "json_schema": spec}


def wire_tool(tool: Tool) -> dict[str, Any]:
    function = {"name": tool.name, **set_fields(tool, ("description", "parameters", "strict"))}
    return {"type": "function", "function": function}


@dataclass(slots=True)
class _Tail:
    """What the last chunks of a stream say: why it ended, the usage, or an error."""

    finish: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None  # the upstream's name for the model that answered
    error: ProviderFailure | None = None
    # Pieces of tool calls read with the text of the latest batch, for the caller to pass on.
    tool_calls: list[ToolCallDelta] = field(default_factory=list)
    # The logprobs entries of the latest batch's text, when the request asked for them.
    logprobs: list[Any] = field(default_factory=list)


class OpenAIAdapter:
    """`provider/model` names whose provider speaks OpenAI's chat completions."""

    kind: ProviderKind = "openai"
    features: frozenset[Feature] = frozenset(
        {"tools", "seed", "logprobs", "response_format", "temperature", "top_p"}
    )

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.http = ProviderHttp(config.base_url, config.api_key, config.headers)
        self._chat_url = self.http.url(CHAT_COMPLETIONS_PATH)

    @property
    def configured(self) -> bool:
        return self.config.api_key is not None

    def check_model(self, model: str) -> None:
        ensure_configured(self.name, self.configured, self.config.key_env)

    async def close(self) -> None:
        await self.http.close()

    async def models(self) -> list[str]:
        answering = False
        try:
            async with self.http.session.get(self.http.url(MODELS_PATH)) as response:
                answering = True
                if response.status >= 400:
                    raise ProviderError(await self._status_failure(response, ""))
                page = orjson.loads(await response.read())
        except TRANSPORT_ERRORS as exc:
            failure = transport_failure(exc, self.name, "", answering=answering)
            raise ProviderError(failure) from exc
        except orjson.JSONDecodeError as exc:
            raise ProviderError(
                stream_failure(self.name, "", "the model list is not JSON")
            ) from exc
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise ProviderError(stream_failure(self.name, "", "the model list has no data"))
        return sorted(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        """The body: only the parameters that were set (the model's defaults apply to
        the others), with the usage asked for at the end of the stream, and the client's
        other fields (`request.options`) as it sent them."""
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [wire_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            **set_fields(request, OPTIONAL_PARAMETERS),
        }
        if request.stop:
            params["stop"] = list(request.stop)
        if request.tools:
            params["tools"] = [wire_tool(tool) for tool in request.tools]
        if request.response_format is not None:
            params["response_format"] = wire_response_format(request.response_format)
        if request.tool_choice is not None:
            choice = request.tool_choice
            named = choice not in ("auto", "none", "required")
            params["tool_choice"] = (
                {"type": "function", "function": {"name": choice}} if named else choice
            )
        if request.options:  # the client's other fields, under its names, as it sent them
            if "max_completion_tokens" in request.options:
                params.pop("max_tokens", None)  # the same limit, under the client's name
            params.update(request.options)
        return params

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        """POST the request as JSON and read the raw SSE stream: no model object per chunk
        (see `sse_events`). An error status, a transport fault, an error object inside the
        stream and a broken stream each become the failure the retry policy expects; so
        does a body that ends with neither a finish reason nor `[DONE]`: an answer cut
        short is never passed on as a complete one."""
        if not self.configured:
            raise ProviderError(not_configured(self.name, self.config.key_env))
        tail = _Tail()
        answering = False
        body = orjson.dumps(self._params(request))
        try:
            # The call span's `traceparent` when tracing is on (None: the session's own).
            headers = outgoing_headers()
            post = self.http.session.post(self._chat_url, data=body, headers=headers)
            async with post as response:
                answering = True
                if response.status >= 400:
                    raise ProviderError(await self._status_failure(response, request.model))
                # All that arrived at each step, and the data before a cut ahead of the cut.
                async with aclosing(available_chunks(response.content)) as chunks:
                    batches = sse_batches(chunks, TextTemplate().parse)
                    async for batch in batches:
                        text = self._read(batch, request.model, tail)
                        if text:  # all that arrived since the last step, as one delta
                            if tail.logprobs:
                                yield TextDelta(text, tuple(tail.logprobs))
                                tail.logprobs.clear()
                            else:
                                yield TextDelta(text)
                        if tail.tool_calls:
                            for piece in tail.tool_calls:
                                yield piece
                            tail.tool_calls.clear()
                        if tail.error is not None:  # after the text read with it
                            raise ProviderError(tail.error)
                if not batches.done and tail.finish is None:
                    raise ProviderError(cut_short(self.name, request.model, "[DONE]"))
        except TRANSPORT_ERRORS as exc:
            failure = transport_failure(exc, self.name, request.model, answering=answering)
            raise ProviderError(failure) from exc
        except orjson.JSONDecodeError as exc:
            failure = stream_failure(self.name, request.model, type(exc).__name__)
            raise ProviderError(failure) from exc
        yield StreamEnd(tail.finish, tail.prompt_tokens, tail.completion_tokens, model=tail.model)

    async def _status_failure(
        self, response: aiohttp.ClientResponse, model: str
    ) -> ProviderFailure:
        """An error answer as a failure: its status and Retry-After, and the message of its
        JSON body (or its text)."""
        raw = await error_body(response)
        try:
            parsed: object = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        detail = _message(parsed) or raw.decode("utf-8", "replace").strip()
        return from_status(
            response.status,
            detail,
            provider=self.name,
            model=model,
            key_env=self.config.key_env,
            headers=response.headers,
            error_code=_code(parsed),
        )

    def _read(self, batch: list[tuple[bytes, Any]], model: str, tail: _Tail) -> str:
        """The text of a batch of chunks (parsed, or a plain one's text: a `str`); finish
        reason, usage and an in-stream error are noted in `tail` (the text before an error
        is still the user's)."""
        texts: list[str] = []
        for _, chunk in batch:
            if type(chunk) is str:  # a plain chunk's text (`TextTemplate`)
                if chunk:
                    texts.append(chunk)
                continue
            if "error" in chunk:
                tail.error = body_failure(chunk, self.name, model, self.config.key_env)
                break
            usage = chunk.get("usage")
            if usage:
                tail.prompt_tokens = usage.get("prompt_tokens")
                tail.completion_tokens = usage.get("completion_tokens")
                tail.model = chunk.get("model")
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content:
                    texts.append(content)
                    logprobs = choice.get("logprobs")
                    if logprobs and logprobs.get("content"):
                        tail.logprobs.extend(logprobs["content"])
                if delta.get("tool_calls"):
                    add_tool_call_pieces(tail.tool_calls, delta["tool_calls"])
                if choice.get("finish_reason"):
                    tail.finish = choice["finish_reason"]
        return texts[0] if len(texts) == 1 else "".join(texts)


def add_tool_call_pieces(pieces: list[ToolCallDelta], calls: list[Any]) -> None:
    """Add OpenAI's streamed tool-call pieces (`{index, id?, type?, function: {name?,
    arguments?}}`; the id and name come with a call's first piece) to `pieces`. A fragment
    that follows a piece of the same call read with it joins that piece, as the text of
    a batch is one delta: one chunk to relay instead of several."""
    for call in calls:
        function = call.get("function") or {}
        index, arguments = call.get("index", 0), function.get("arguments") or ""
        call_id, name = call.get("id"), function.get("name")
        last = pieces[-1] if pieces else None
        if last is not None and last.index == index and call_id is None and name is None:
            pieces[-1] = ToolCallDelta(index, last.id, last.name, last.arguments + arguments)
        else:
            pieces.append(ToolCallDelta(index, call_id, name, arguments))


STATUS_BY_KIND = {
    "rate_limit_error": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "server_error": 500,
    "authentication_error": 401,
    "invalid_request_error": 400,
    "not_found_error": 404,
}


def body_failure(
    body: object, provider: str, model: str, key_env: str, fallback: str = "error in stream"
) -> ProviderFailure:
    """A failure from an error object sent inside a 200 stream: its `code` (a status) or
    its `type` says what kind it is."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    detail = _message(body) or fallback
    code = error.get("code") if isinstance(error, Mapping) else None
    kind = error.get("type") if isinstance(error, Mapping) else None
    status = code if isinstance(code, int) else STATUS_BY_KIND.get(str(kind))
    if status is not None:
        return from_status(
            status, detail, provider=provider, model=model, key_env=key_env, error_code=code
        )
    return stream_failure(provider, model, detail)


def sdk_failure(exc: Exception, provider: str, model: str, key_env: str) -> ProviderFailure:
    """Map an OpenAI- or Anthropic-SDK exception (they share their shapes) to a failure."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    detail = _message(getattr(exc, "body", None)) or str(getattr(exc, "message", "") or "")
    if isinstance(status, int) and status >= 400:
        headers: Mapping[str, str] = response.headers if response is not None else {}
        return from_status(
            status,
            detail,
            provider=provider,
            model=model,
            key_env=key_env,
            headers=headers,
            error_code=_code(getattr(exc, "body", None)),
        )
    name = type(exc).__name__
    timed_out = "Timeout" in name
    dropped = timed_out and _dropped_connection(exc)
    if timed_out and not dropped:
        return timeout_failure(provider, model, "answer", SDK_TIMEOUT_SECONDS)
    if dropped or "Connection" in name:
        return connection_failure(provider, model, detail or name)
    return body_failure(getattr(exc, "body", None), provider, model, key_env, detail or name)


def _dropped_connection(exc: BaseException) -> bool:
    """Whether a connection dropped or was refused somewhere down `exc`'s causes.

    The SDK's aiohttp transport reports every aiohttp connection error as a
    `ConnectTimeout` (so the SDK raises a timeout); the cause tells the truth.
    """
    import aiohttp

    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, ConnectionError) or (
            isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError)
        ):
            return True
        cause = cause.__cause__
    return False


def _code(body: object) -> object:
    """The `code` of an error body (OpenAI's `{"error": {"code"}}`), if any."""
    error = body.get("error", body) if isinstance(body, Mapping) else None
    return error.get("code") if isinstance(error, Mapping) else None


def _message(body: object) -> str:
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return ""

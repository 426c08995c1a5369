"""A fake OpenAI / Anthropic / Bedrock HTTP server for tests, with fault injection.

Tests point the official ``openai`` and ``anthropic`` SDK clients and boto3 at this server,
so the provider adapters run through the SDKs' real HTTP stack (connection pool, SSE or
event-stream decoder, error mapping, signing) against the providers' exact wire formats:

- ``POST /v1/chat/completions``: OpenAI chat completions, JSON or an SSE stream of
  ``chat.completion.chunk`` objects ending in ``data: [DONE]``;
- ``POST /v1/messages``: Anthropic messages, JSON or an SSE stream of named events
  (``message_start`` ... ``message_stop``);
- ``POST /model/{modelId}/converse-stream``: Bedrock Runtime's ConverseStream, a binary
  ``application/vnd.amazon.eventstream`` (``bedrock_wire``), or an AWS JSON error;
- ``GET /v1/models``: Anthropic's model list when the request carries an
  ``anthropic-version`` header, OpenAI's otherwise.

Each request to a completion endpoint consumes the next queued :class:`Reply` of its route
(``enqueue``), which says what to answer and which fault to inject: an error status, a
connection reset, no answer at all, a stream cut or stalled mid-way, invalid JSON, an
in-stream error event, UTF-8 characters split across network reads, or a delay before
each token.

It is a raw ``asyncio.start_server`` HTTP/1.1 server rather than an ASGI app, so that every
byte on the socket is under control: an ASGI server would finish chunked bodies and close
connections gracefully on its own. Every response carries ``Connection: close``, unless
``keep_alive`` is set (as real providers do, and as a benchmark wants): then a response
that ends normally leaves the connection open for the client's next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Self

from tests.fakes import bedrock_wire

Route = Literal["openai", "anthropic", "bedrock"]

OPENAI_COMPLETIONS_PATH = "/v1/chat/completions"
ANTHROPIC_MESSAGES_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"
ROUTE_PATHS: dict[str, str] = {
    "openai": OPENAI_COMPLETIONS_PATH,
    "anthropic": ANTHROPIC_MESSAGES_PATH,
}
# Every route with a reply queue; Bedrock's path names the model, so it has no fixed path.
ROUTES: tuple[Route, ...] = ("openai", "anthropic", "bedrock")

# Pause between the 1-byte writes of a `split_utf8` stream.
SPLIT_WRITE_PAUSE = 0.002
# A fixed `created` timestamp keeps responses reproducible.
CREATED = 1_700_000_000
_MAX_HEAD_BYTES = 1 << 20


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes; its JSON arguments are streamed in `fragments`."""

    id: str
    name: str
    fragments: tuple[str, ...] = ("{}",)

    @property
    def arguments(self) -> str:
        return "".join(self.fragments)


@dataclass
class Reply:
    """What the server answers to one completion request, and which fault to inject."""

    status: int = 200
    # Extra response headers, e.g. {"Retry-After": "2"}.
    headers: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "!"])
    # For status >= 400: the JSON body; None sends the provider's default body for the status.
    error_body: dict[str, Any] | None = None
    # Seconds before each token (for a non-streaming reply: before the whole body, per token).
    delay: float = 0.0
    # Streaming: send this many token events, then close the connection with no end of stream.
    cut_after: int | None = None
    # Streaming: send this many token events, then end the body cleanly with no end of
    # stream (no finish reason, usage nor `[DONE]`; Anthropic: no message_delta nor
    # message_stop), as a proxy or an upstream dying mid-answer does: the HTTP body is whole.
    end_after: int | None = None
    # Streaming: no chunked encoding, the body delimited by the connection's close (HTTP/1.0
    # style), so a cut (`cut_after`) is a clean end of the body too.
    close_delimited: bool = False
    # Streaming: send this many token events, then nothing until the client or server closes.
    stall_after: int | None = None
    # Read the request, then close the socket with an RST before sending any byte.
    reset: bool = False
    # Read the request, then send nothing at all until the client leaves.
    hang: bool = False
    # Streaming: the event at this token index is a data line of invalid JSON instead
    # (Bedrock: a frame whose checksum is wrong).
    malformed_at: int | None = None
    # Streaming: write each token event one byte per HTTP chunk, pausing between bytes, so
    # multi-byte UTF-8 characters are split across network reads.
    split_utf8: bool = False
    # Streaming with status 200: the first and only event is this error, then the stream ends.
    # The inner error object, e.g. {"type": "overloaded_error", "message": "Overloaded"};
    # a dict that already has an "error" key is sent as the whole event payload.
    # Bedrock: an exception message named by "type" (Anthropic's names are translated).
    error_event: dict[str, Any] | None = None
    # With error_event: first this many token events, then the error, all in one write (so
    # in one read of the client), instead of the error alone.
    error_after: int | None = None
    # The error's message (of a status >= 400, or of error_event) quotes the request's
    # credentials, as a careless upstream does: "Incorrect API key provided: Bearer sk-...".
    # (Bedrock: the SigV4 Authorization header, which carries the AWS access key id.)
    echo_key: bool = False
    # Bedrock, status >= 400: the x-amzn-ErrorType sent instead of the status's usual one,
    # e.g. "ModelNotReadyException" (429).
    error_type: str | None = None
    prompt_tokens: int = 11
    # None: len(tokens).
    completion_tokens: int | None = None
    # OpenAI only: send the usage chunk if the request asked stream_options.include_usage and
    # this is True. Anthropic streams always carry usage.
    include_usage: bool = True
    # OpenAI finish_reason; Anthropic's stop_reason is mapped from it ("stop" -> "end_turn").
    # With tool_calls, "stop" is sent as "tool_calls" ("tool_use").
    finish_reason: str = "stop"
    # Tool calls made after the text tokens, in each provider's own wire format.
    tool_calls: list[FakeToolCall] = field(default_factory=list)

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) if self.completion_tokens is None else self.completion_tokens

    @property
    def finish(self) -> str:
        return (
            "tool_calls" if self.tool_calls and self.finish_reason == "stop" else self.finish_reason
        )


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: Any  # parsed JSON, or None when empty or not JSON
    at: float  # time.monotonic() when the request head was fully read
    query: str = ""
    raw_body: bytes = b""


# --------------------------------------------------------------------------------------------
# HTTP/1.1 framing
# --------------------------------------------------------------------------------------------


class _BadRequestError(Exception):
    """The bytes on the socket are not an HTTP/1.1 request we can read."""


class _ClientGoneError(Exception):
    """The client closed the connection while the server was answering."""


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    """Read one request (head and body); None if the client closed before sending anything."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise _BadRequestError("connection closed inside the request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise _BadRequestError("request head too large") from exc
    at = time.monotonic()
    request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    try:
        method, target, _version = request_line.split(" ", 2)
    except ValueError as exc:
        raise _BadRequestError(f"bad request line {request_line!r}") from exc
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise _BadRequestError(f"bad header line {line!r}")
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raw_body = await _read_body(reader, headers)
    path, _, query = target.partition("?")
    return Received(method, path, headers, _parse_json(raw_body), at, query, raw_body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked_body(reader)
        length = int(headers.get("content-length") or 0)
        return await reader.readexactly(length) if length > 0 else b""
    except (asyncio.IncompleteReadError, ValueError) as exc:
        raise _BadRequestError(f"bad request body: {exc}") from exc


async def _read_chunked_body(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, ignored
        pass
    return b"".join(parts)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


_EXTRA_REASONS = {529: "Site Overloaded"}


def _response_head(status: int, headers: dict[str, str]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = _EXTRA_REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_LAST_CHUNK = b"0\r\n\r\n"


def _json_bytes(payload: Any) -> bytes:
    # Non-ASCII goes out as raw UTF-8, as the providers send it.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Server-sent events
# --------------------------------------------------------------------------------------------


def sse_data(payload: Any) -> bytes:
    """An unnamed event, as OpenAI sends them: ``data: {json}``."""
    return b"data: " + _json_bytes(payload) + b"\n\n"


def sse_event(event: str, payload: Any) -> bytes:
    """A named event, as Anthropic sends them: ``event: <type>`` then ``data: {json}``."""
    return f"event: {event}\n".encode() + b"data: " + _json_bytes(payload) + b"\n\n"


@dataclass
class _StreamPlan:
    """The SSE events of one stream: the token events are where faults are injected."""

    preamble: list[bytes]
    tokens: list[bytes]
    trailer: list[bytes]


_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):024x}"


# --------------------------------------------------------------------------------------------
# OpenAI wire format
# --------------------------------------------------------------------------------------------

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to sample from this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def openai_error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """OpenAI's error body for an HTTP status."""
    default = ("server_error", None, "Server error.") if status >= 500 else None
    kind, code, text = _OPENAI_ERRORS.get(
        status, default or ("invalid_request_error", None, "Request failed.")
    )
    return {"error": {"message": message or text, "type": kind, "param": None, "code": code}}


def openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_chunk(
    completion_id: str,
    model: str,
    choices: list[dict[str, Any]],
    *,
    usage_field: bool,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``usage_field`` adds ``"usage"`` (null unless given)."""
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if usage_field:
        chunk["usage"] = usage
    return chunk


def openai_logprobs(token: str) -> dict[str, Any]:
    """A token's `logprobs` of a streamed choice: a fixed log probability."""
    entry = {"token": token, "logprob": -0.25, "bytes": list(token.encode()), "top_logprobs": []}
    return {"content": [entry], "refusal": None}


def openai_choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def openai_completion(reply: Reply, model: str) -> dict[str, Any]:
    """A non-streaming ``chat.completion``."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(reply.tokens) if reply.tokens or not reply.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish,
            }
        ],
        "usage": openai_usage(reply.prompt_tokens, reply.output_tokens),
        "service_tier": "default",
        "system_fingerprint": None,
    }


def _error_plan(reply: Reply, plan: _StreamPlan, error: bytes) -> _StreamPlan:
    """The error event alone, or after `error_after` token events in the same write."""
    if reply.error_after is None:
        return _StreamPlan([error], [], [])
    return _StreamPlan(plan.preamble, [b"".join(plan.tokens[: reply.error_after]) + error], [])


def openai_stream_plan(reply: Reply, model: str, request: dict[str, Any]) -> _StreamPlan:
    plan = _openai_stream_plan(reply, model, request)
    if reply.error_event is not None:
        error = reply.error_event
        return _error_plan(reply, plan, sse_data(error if "error" in error else {"error": error}))
    return plan


def _openai_stream_plan(reply: Reply, model: str, request: dict[str, Any]) -> _StreamPlan:
    completion_id = _new_id("chatcmpl-")
    options = request.get("stream_options")
    usage_requested = isinstance(options, dict) and options.get("include_usage") is True

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        payload = openai_chunk(
            completion_id, model, choices, usage_field=usage_requested, usage=usage
        )
        return sse_data(payload)

    tokens = [chunk([openai_choice({"content": token})]) for token in reply.tokens]
    if request.get("logprobs") is True:  # each token's entry, as OpenAI sends them
        tokens = [
            chunk([{**openai_choice({"content": token}), "logprobs": openai_logprobs(token)}])
            for token in reply.tokens
        ]
    if reply.malformed_at is not None and 0 <= reply.malformed_at < len(tokens):
        tokens[reply.malformed_at] = (
            b'data: {"id":"' + completion_id.encode() + b'","object":"chat.completion.chunk",'
            b'"choices":[{"index":0,"delta":{"content":\n\n'
        )
    for index, call in enumerate(reply.tool_calls):
        opening = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        tokens.append(chunk([openai_choice({"tool_calls": [opening]})]))
        for fragment in call.fragments:
            piece = {"index": index, "function": {"arguments": fragment}}
            tokens.append(chunk([openai_choice({"tool_calls": [piece]})]))
    trailer = [chunk([openai_choice({}, reply.finish)])]
    if usage_requested and reply.include_usage:
        trailer.append(chunk([], openai_usage(reply.prompt_tokens, reply.output_tokens)))
    trailer.append(b"data: [DONE]\n\n")
    preamble = [chunk([openai_choice({"role": "assistant", "content": ""})])]
    return _StreamPlan(preamble, tokens, trailer)


def openai_models(models: Iterable[str]) -> dict[str, Any]:
    data = [
        {"id": model, "object": "model", "created": CREATED, "owned_by": "fake"} for model in models
    ]
    return {"object": "list", "data": data}


# --------------------------------------------------------------------------------------------
# Anthropic wire format
# --------------------------------------------------------------------------------------------

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def anthropic_error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Anthropic's error body for an HTTP status."""
    default = ("api_error", "Internal server error") if status >= 500 else None
    kind, text = _ANTHROPIC_ERRORS.get(
        status, default or ("invalid_request_error", "Request failed.")
    )
    return {"type": "error", "error": {"type": kind, "message": message or text}}


# Models the fake says have no native structured output (`output_config.format`).
ANTHROPIC_NO_OUTPUT_FORMAT = ("claude-3", "claude-opus-4-0", "claude-sonnet-4-0")


def anthropic_request_problem(body: dict[str, Any]) -> str | None:
    """What the Messages API would refuse (400) in the parts of a request the fake checks:
    structured output is `output_config: {"format": {"type": "json_schema", "schema"}}`
    (`output_config` may also hold only `effort`)
    (no `output_format` field: the SDK's parameter of that name is its own, deprecated),
    on a model that has it, every object of the schema closed (`additionalProperties`
    false), and tools each with a name and an object `input_schema`."""
    if "output_format" in body:
        return "output_format: Extra inputs are not permitted"
    for index, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not tool.get("name"):
            return f"tools.{index}.name: Field required"
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{index}.input_schema: Input should be an object schema"
    if "output_config" not in body:
        return None
    config = body["output_config"]
    if not isinstance(config, dict):
        return "output_config: Input should be an object"
    if "format" not in config:  # e.g. only `effort`
        return None
    fmt = config["format"]
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return "output_config.format.type: Input should be 'json_schema'"
    if not isinstance(fmt.get("schema"), dict):
        return "output_config.format.schema: Field required"
    if str(body.get("model", "")).startswith(ANTHROPIC_NO_OUTPUT_FORMAT):
        return f"'{body['model']}' does not support output format"
    return _open_object(fmt["schema"], "output_config.format.schema")


def _open_object(schema: Any, where: str) -> str | None:
    """The first object of `schema` not closed by `additionalProperties: false`."""
    if isinstance(schema, list):
        return next(
            (p for i, s in enumerate(schema) if (p := _open_object(s, f"{where}.{i}"))), None
        )
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        return f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
    for key in ("properties", "$defs"):
        for name, sub in (schema.get(key) or {}).items():
            if problem := _open_object(sub, f"{where}.{key}.{name}"):
                return problem
    for key in ("items", "anyOf", "allOf"):
        if key in schema and (problem := _open_object(schema[key], f"{where}.{key}")):
            return problem
    return None


def anthropic_stop_reason(finish_reason: str) -> str:
    return _STOP_REASONS.get(finish_reason, finish_reason)


def anthropic_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def anthropic_message(reply: Reply, model: str) -> dict[str, Any]:
    """A non-streaming Message."""
    return {
        "id": _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            *([{"type": "text", "text": "".join(reply.tokens)}] if reply.tokens else []),
            *(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
                for c in reply.tool_calls
            ),
        ],
        "stop_reason": anthropic_stop_reason(reply.finish),
        "stop_sequence": None,
        "usage": anthropic_usage(reply.prompt_tokens, reply.output_tokens),
    }


def anthropic_stream_plan(reply: Reply, model: str) -> _StreamPlan:
    plan = _anthropic_stream_plan(reply, model)
    if reply.error_event is not None:
        error = reply.error_event
        payload = error if "error" in error else {"type": "error", "error": error}
        return _error_plan(reply, plan, sse_event("error", payload))
    return plan


def _anthropic_stream_plan(reply: Reply, model: str) -> _StreamPlan:
    message: dict[str, Any] = {
        "id": _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(reply.prompt_tokens, 1),
    }
    preamble = [
        sse_event("message_start", {"type": "message_start", "message": message}),
        sse_event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        sse_event("ping", {"type": "ping"}),
    ]
    tokens = [
        sse_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": token},
            },
        )
        for token in reply.tokens
    ]
    if reply.malformed_at is not None and 0 <= reply.malformed_at < len(tokens):
        tokens[reply.malformed_at] = (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":\n\n'
        )
    delta = {"stop_reason": anthropic_stop_reason(reply.finish), "stop_sequence": None}
    trailer = [
        sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        *_anthropic_tool_blocks(reply),
        sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": delta,
                "usage": {"output_tokens": reply.output_tokens},
            },
        ),
        sse_event("message_stop", {"type": "message_stop"}),
    ]
    return _StreamPlan(preamble, tokens, trailer)


def _anthropic_tool_blocks(reply: Reply) -> list[bytes]:
    """Each tool call as a `tool_use` block after the text block: its start (id, name,
    empty input), its `input_json_delta`s, its stop."""
    events = []
    for index, call in enumerate(reply.tool_calls, start=1):
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        events.append(
            sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        for fragment in call.fragments:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            events.append(
                sse_event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(
            sse_event("content_block_stop", {"type": "content_block_stop", "index": index})
        )
    return events


def anthropic_models(models: list[str]) -> dict[str, Any]:
    data = [
        {
            "type": "model",
            "id": model,
            "display_name": model.replace("-", " ").title(),
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "active",
        }
        for model in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": models[0] if models else None,
        "last_id": models[-1] if models else None,
    }


# --------------------------------------------------------------------------------------------
# Bedrock wire format (the frames themselves: bedrock_wire)
# --------------------------------------------------------------------------------------------

_BEDROCK_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def bedrock_stream_plan(reply: Reply) -> _StreamPlan:
    """ConverseStream's event-stream messages for a reply."""
    tokens = [
        bedrock_wire.token(text, corrupt=index == reply.malformed_at)
        for index, text in enumerate(reply.tokens)
    ]
    stop_reason = _BEDROCK_STOP_REASONS.get(reply.finish, reply.finish)
    tools = [
        event
        for index, call in enumerate(reply.tool_calls, start=1)
        for event in bedrock_wire.tool_use(index, call.id, call.name, call.fragments)
    ]
    plan = _StreamPlan(
        bedrock_wire.preamble(),
        tokens,
        bedrock_wire.trailer(stop_reason, reply.prompt_tokens, reply.output_tokens, tools),
    )
    if reply.error_event is None:
        return plan
    kind = str(reply.error_event.get("type", "internalServerException"))
    message = str(reply.error_event.get("message", kind))
    return _error_plan(reply, plan, bedrock_wire.exception(kind, message))


def _echoing_key(reply: Reply, request: Received, route: Route) -> Reply:
    """`reply` with its error message quoting the credentials the request carried."""
    sent = request.headers.get("authorization") or request.headers.get("x-api-key", "")
    message = f"Incorrect API key provided: {sent}. You can find your API key elsewhere."
    if reply.error_event is not None:
        kind = reply.error_event.get("type", "invalid_request_error")
        return replace(reply, error_event={"type": kind, "message": message})
    if route == "bedrock":
        return replace(reply, error_body={"message": message})
    body = anthropic_error_body if route == "anthropic" else openai_error_body
    return replace(reply, error_body=body(reply.status, message))


def _route_of(request: Received) -> Route | None:
    """The completion route a request is for, if it is one."""
    if request.method != "POST":
        return None
    if request.path == OPENAI_COMPLETIONS_PATH:
        return "openai"
    if request.path == ANTHROPIC_MESSAGES_PATH:
        return "anthropic"
    if bedrock_wire.model_of(request.path) is not None:
        return "bedrock"
    return None


# --------------------------------------------------------------------------------------------
# One connection
# --------------------------------------------------------------------------------------------


class _Connection:
    """One accepted socket: writes that notice a departed client, and abrupt endings."""

    def __init__(
        self,
        server: FakeProviderServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self.gone = asyncio.Event()
        # True while the server is still producing the response: a client leaving then is a
        # disconnect worth recording.
        self.answering = False
        self._recorded = False
        self._watcher: asyncio.Task[None] | None = None
        self.complete = False  # the response ended normally: the connection may be reused

    def watch(self) -> None:
        """Notice the client closing its end (EOF) while the response is being produced."""
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        with contextlib.suppress(OSError):
            while await self._reader.read(65536):
                pass
        self._client_gone()

    async def next_request(self) -> None:
        """Stop watching for EOF (the watcher must not eat the next request's bytes)."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.wait([self._watcher])
            self._watcher = None
        self.complete = False
        self._recorded = False

    def _client_gone(self) -> None:
        self.gone.set()
        if self.answering and not self._recorded:
            self._recorded = True
            self._server.disconnects.append(time.monotonic())

    async def send(self, data: bytes) -> None:
        if self.gone.is_set():
            raise _ClientGoneError
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            self._client_gone()
            raise _ClientGoneError from exc

    async def pause(self, seconds: float) -> None:
        """Sleep, but give up as soon as the client leaves."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.gone.wait()
        if self.gone.is_set():
            raise _ClientGoneError

    async def wait_gone(self) -> None:
        await self.gone.wait()

    def reset(self) -> None:
        """Close with an RST: SO_LINGER with a zero timeout, then close without flushing."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.answering = False
        self._writer.transport.abort()

    async def close(self) -> None:
        self.answering = False
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.wait([self._watcher])
        self._writer.close()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeProviderServer:
    """A fake OpenAI + Anthropic server on a free loopback port; see the module docstring."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Received] = []
        self.disconnects: list[float] = []
        self.connections = 0  # accepted so far: a pooling client reuses them
        self.openai_models: list[str] = ["gpt-4o-mini", "gpt-4o"]
        self.anthropic_models: list[str] = ["claude-sonnet-4-6", "claude-haiku-4-5"]
        self.models_status = 200
        self.keep_alive = False
        # What to answer when a route's queue is empty (default: `Reply()`): a test that
        # cannot know in advance how many calls come (a fault suite) answers by request.
        self.responder: Callable[[Received], Reply] | None = None
        # Unexpected exceptions raised while handling a connection (bugs in this fake).
        self.handler_errors: list[BaseException] = []
        self._queues: dict[str, deque[Reply]] = {route: deque() for route in ROUTES}
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeProviderServer already started")
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, limit=_MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every open connection, stalled streams included."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def bedrock_endpoint_url(self) -> str:
        return self.base_url

    # -- scripting and inspection ------------------------------------------------------------

    def enqueue(self, route: str, *replies: Reply) -> None:
        """Queue replies for a route's completion endpoint, consumed one per request."""
        if route not in self._queues:
            raise ValueError(f"unknown route {route!r}; expected one of {sorted(self._queues)}")
        self._queues[route].extend(replies)

    def requests_to(self, route: str) -> list[Received]:
        """The completion requests of a route, in order."""
        return [r for r in self.requests if _route_of(r) == route]

    def clear(self) -> None:
        """Forget the requests seen and the replies queued, as if new."""
        self.requests.clear()
        for queue in self._queues.values():
            queue.clear()

    def _next_reply(self, route: str, request: Received) -> Reply:
        queue = self._queues[route]
        if queue:
            return queue.popleft()
        return self.responder(request) if self.responder is not None else Reply()

    # -- connection handling -----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        conn = _Connection(self, reader, writer)
        self.connections += 1
        try:
            while self._server is not None:
                try:
                    request = await _read_request(reader)
                except _BadRequestError as exc:
                    await self._send_json(conn, 400, openai_error_body(400, str(exc)))
                    return
                if request is None:
                    return
                self.requests.append(request)
                conn.watch()
                conn.answering = True
                await self._dispatch(conn, request)
                if not (self.keep_alive and conn.complete) or conn.gone.is_set():
                    return
                await conn.next_request()
        except (_ClientGoneError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): the connection is closed below
        except Exception as exc:
            self.handler_errors.append(exc)
            raise
        finally:
            await conn.close()
            if task is not None:
                self._handlers.discard(task)

    async def _dispatch(self, conn: _Connection, request: Received) -> None:
        anthropic_client = "anthropic-version" in request.headers
        route = _route_of(request)
        if route == "bedrock":
            await self._bedrock(conn, request)
        elif route is not None:
            await self._completion(conn, route, request)
        elif request.method == "GET" and request.path == MODELS_PATH:
            await self._models(conn, anthropic_client)
        else:
            message = f"No route for {request.method} {request.path}"
            body = (
                anthropic_error_body(404, message)
                if anthropic_client
                else openai_error_body(404, message)
            )
            await self._send_json(conn, 404, body)

    async def _models(self, conn: _Connection, anthropic_client: bool) -> None:
        status = self.models_status
        if anthropic_client:
            body = (
                anthropic_error_body(status)
                if status >= 400
                else anthropic_models(self.anthropic_models)
            )
        else:
            body = openai_error_body(status) if status >= 400 else openai_models(self.openai_models)
        await self._send_json(conn, status, body, anthropic=anthropic_client)

    async def _completion(self, conn: _Connection, route: Route, request: Received) -> None:
        anthropic = route == "anthropic"
        if not isinstance(request.body, dict):
            message = "The request body is not a JSON object."
            body = (
                anthropic_error_body(400, message) if anthropic else openai_error_body(400, message)
            )
            await self._send_json(conn, 400, body, anthropic=anthropic)
            return
        problem = anthropic_request_problem(request.body) if anthropic else None
        if problem is not None:  # as the Messages API refuses it, before any reply is used
            await self._send_json(conn, 400, anthropic_error_body(400, problem), anthropic=True)
            return
        reply = self._next_reply(route, request)
        if reply.echo_key:
            reply = _echoing_key(reply, request, route)
        if await self._no_answer(conn, reply):
            return
        if reply.status >= 400:
            if reply.error_body is not None:
                error = reply.error_body
            elif anthropic:
                error = anthropic_error_body(reply.status)
            else:
                error = openai_error_body(reply.status)
            await self._send_json(conn, reply.status, error, reply.headers, anthropic=anthropic)
            return
        default_model = self.anthropic_models[0] if anthropic else self.openai_models[0]
        model = str(request.body.get("model") or default_model)
        if request.body.get("stream") is True:
            plan = (
                anthropic_stream_plan(reply, model)
                if anthropic
                else openai_stream_plan(reply, model, request.body)
            )
            await self._stream(conn, reply, plan, self._base_headers(anthropic))
            return
        await conn.pause(reply.delay * len(reply.tokens))
        payload = anthropic_message(reply, model) if anthropic else openai_completion(reply, model)
        await self._send_json(conn, reply.status, payload, reply.headers, anthropic=anthropic)

    @staticmethod
    async def _no_answer(conn: _Connection, reply: Reply) -> bool:
        """Apply `reset` or `hang`; True if one was."""
        if reply.reset:
            conn.reset()
            return True
        if reply.hang:
            await conn.wait_gone()
            return True
        return False

    async def _bedrock(self, conn: _Connection, request: Received) -> None:
        """ConverseStream: an AWS JSON error, or the reply as event-stream messages."""
        request_id = {"x-amzn-RequestId": _new_id("")}
        if not isinstance(request.body, dict):
            status, headers, body = bedrock_wire.error(400, message="Malformed input request.")
            await self._send_json(conn, status, body, {**headers, **request_id})
            return
        reply = self._next_reply("bedrock", request)
        if reply.echo_key:
            reply = _echoing_key(reply, request, "bedrock")
        if await self._no_answer(conn, reply):
            return
        if reply.status >= 400:
            message = (reply.error_body or {}).get("message")
            status, headers, body = bedrock_wire.error(reply.status, reply.error_type, message)
            await self._send_json(conn, status, body, {**headers, **request_id, **reply.headers})
            return
        headers = {"Content-Type": bedrock_wire.CONTENT_TYPE, **request_id}
        await self._stream(conn, reply, bedrock_stream_plan(reply), headers)

    # -- responses ---------------------------------------------------------------------------

    @property
    def _connection_header(self) -> str:
        return "keep-alive" if self.keep_alive else "close"

    @staticmethod
    def _base_headers(anthropic: bool) -> dict[str, str]:
        request_id = _new_id("req_")
        return {"request-id": request_id} if anthropic else {"x-request-id": request_id}

    async def _send_json(
        self,
        conn: _Connection,
        status: int,
        payload: Any,
        extra_headers: dict[str, str] | None = None,
        *,
        anthropic: bool = False,
    ) -> None:
        body = _json_bytes(payload)
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Connection": self._connection_header,
            **self._base_headers(anthropic),
            **(extra_headers or {}),
        }
        conn.answering = False  # the whole answer goes out in this write
        await conn.send(_response_head(status, headers) + body)
        conn.complete = True

    async def _stream(
        self, conn: _Connection, reply: Reply, plan: _StreamPlan, extra_headers: dict[str, str]
    ) -> None:
        """A chunked streaming answer (SSE unless `extra_headers` names another type)."""
        chunked = not reply.close_delimited
        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            **({"Transfer-Encoding": "chunked"} if chunked else {}),
            "Cache-Control": "no-cache",
            "Connection": self._connection_header if chunked else "close",
            **extra_headers,
            **reply.headers,
        }
        frame = _http_chunk if chunked else bytes
        await conn.send(_response_head(reply.status, headers))
        for event in plan.preamble:
            await conn.send(frame(event))
        tokens = plan.tokens if reply.end_after is None else plan.tokens[: reply.end_after]
        for index, event in enumerate(tokens):
            if await self._interrupted(conn, reply, index):
                return
            await conn.pause(reply.delay)
            await self._send_event(conn, event, split=reply.split_utf8, chunked=chunked)
        if await self._interrupted(conn, reply, len(tokens)):
            return
        if reply.end_after is None:  # else: ended cleanly, before the stream's own end
            for event in plan.trailer:
                await conn.send(frame(event))
        conn.answering = False  # a client leaving after the last chunk is no disconnect
        if chunked:
            await conn.send(_LAST_CHUNK)
            conn.complete = True

    @staticmethod
    async def _interrupted(conn: _Connection, reply: Reply, sent: int) -> bool:
        """Apply cut_after / stall_after once `sent` token events are out; True if applied."""
        if reply.cut_after is not None and sent >= reply.cut_after:
            conn.answering = False  # the server ends it: close() flushes, then sends a FIN
            return True
        if reply.stall_after is not None and sent >= reply.stall_after:
            await conn.wait_gone()  # until the client leaves, or stop() cancels us
            return True
        return False

    @staticmethod
    async def _send_event(
        conn: _Connection, event: bytes, *, split: bool, chunked: bool = True
    ) -> None:
        frame = _http_chunk if chunked else bytes
        if not split:
            await conn.send(frame(event))
            return
        for byte in event:
            await conn.send(frame(bytes([byte])))
            await asyncio.sleep(SPLIT_WRITE_PAUSE)

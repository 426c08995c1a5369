"""Bedrock Runtime's wire format, for the fake provider server's ``bedrock`` route.

ConverseStream answers ``application/vnd.amazon.eventstream``: binary messages (prelude,
headers, JSON payload, CRCs) that boto3's own parser reads. Errors before the stream are
AWS JSON errors: ``{"message": ...}`` with the exception's name in ``x-amzn-ErrorType``;
errors inside it are ``exception`` messages named in ``:exception-type``. Statuses and
names are botocore's service model for bedrock-runtime (``ConverseStream.errors``).
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

STRING_HEADER = 7
CONTENT_TYPE = "application/vnd.amazon.eventstream"
CONVERSE_STREAM_SUFFIX = "/converse-stream"
MODEL_PREFIX = "/model/"

# A fault's status -> (the status AWS sends, x-amzn-ErrorType, its usual message).
# Bedrock refuses a bad credential as 403 UnrecognizedClientException, never 401.
ERRORS: dict[int, tuple[int, str, str]] = {
    400: (400, "ValidationException", "Malformed input request, please reformat your input."),
    401: (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    403: (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    404: (
        404,
        "ResourceNotFoundException",
        "Could not resolve the foundation model from the model identifier.",
    ),
    408: (408, "ModelTimeoutException", "Model has timed out in processing the request."),
    424: (424, "ModelErrorException", "The model returned an error."),
    429: (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    500: (500, "InternalServerException", "The server encountered an internal error."),
    503: (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
}
# In-stream error kinds of the other providers' fault rows, as Bedrock names them.
STREAM_EXCEPTIONS = {
    "overloaded_error": "serviceUnavailableException",
    "api_error": "internalServerException",
    "rate_limit_error": "throttlingException",
}
ERROR_TYPE_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def model_of(path: str) -> str | None:
    """The model id of a ConverseStream path (``/model/{modelId}/converse-stream``)."""
    if not (path.startswith(MODEL_PREFIX) and path.endswith(CONVERSE_STREAM_SUFFIX)):
        return None
    return unquote(path[len(MODEL_PREFIX) : -len(CONVERSE_STREAM_SUFFIX)]) or None


def error(
    status: int, error_type: str | None = None, message: str | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, JSON body) of an AWS error for a fault's status."""
    default = (status, "InternalServerException", "Internal error.") if status >= 500 else None
    sent, kind, text = ERRORS.get(
        status, default or (status, "ValidationException", "Bad request.")
    )
    headers = {"x-amzn-ErrorType": f"{error_type or kind}{ERROR_TYPE_NAMESPACE}"}
    return sent, headers, {"message": message or text}


def _headers(values: dict[str, str]) -> bytes:
    out = b""
    for name, value in values.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", STRING_HEADER, len(raw_value)) + raw_value
    return out


def encode_message(headers: dict[str, str], payload: bytes, *, corrupt: bool = False) -> bytes:
    """One event-stream message; `corrupt` spoils its message CRC, as a damaged frame."""
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + head + payload
    crc = binascii.crc32(body) & 0xFFFFFFFF
    return body + struct.pack("!I", crc ^ 0xFFFFFFFF if corrupt else crc)


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def event(kind: str, payload: dict[str, Any], *, corrupt: bool = False) -> bytes:
    return encode_message(
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        _json(payload),
        corrupt=corrupt,
    )


def exception(kind: str, message: str) -> bytes:
    kind = STREAM_EXCEPTIONS.get(kind, kind)
    return encode_message(
        {
            ":exception-type": kind,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        _json({"message": message}),
    )


def token(text: str, *, corrupt: bool = False) -> bytes:
    return event(
        "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}, corrupt=corrupt
    )


def tool_use(index: int, call_id: str, name: str, fragments: Iterable[str]) -> list[bytes]:
    """A `toolUse` content block: its start (id, name), its input pieces, its stop."""
    start = {"toolUse": {"toolUseId": call_id, "name": name}}
    return [
        event("contentBlockStart", {"contentBlockIndex": index, "start": start}),
        *(
            event(
                "contentBlockDelta",
                {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}},
            )
            for fragment in fragments
        ),
        event("contentBlockStop", {"contentBlockIndex": index}),
    ]


def preamble() -> list[bytes]:
    return [event("messageStart", {"role": "assistant"})]


def trailer(
    stop_reason: str, input_tokens: int, output_tokens: int, tools: Iterable[bytes] = ()
) -> list[bytes]:
    usage = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + output_tokens,
    }
    return [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        *tools,
        event("messageStop", {"stopReason": stop_reason}),
        event("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}),
    ]

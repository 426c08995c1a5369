"""AWS event-stream encoding, so boto3's own parser reads a fake Bedrock ConverseStream.

`serve_stream(client, frames)` answers the client's next ConverseStream call with those
frames, binary-encoded as Bedrock sends them (prelude, headers, JSON payload, CRCs),
through botocore's `before-send` hook: signing, parsing and EventStream are all real.
"""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

STRING_HEADER = 7


def _headers(values: dict[str, str]) -> bytes:
    out = b""
    for name, value in values.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", STRING_HEADER, len(raw_value)) + raw_value
    return out


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + head + payload
    return body + struct.pack("!I", binascii.crc32(body) & 0xFFFFFFFF)


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_message(
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode(),
    )


def exception(kind: str, message: str) -> bytes:
    return encode_message(
        {
            ":exception-type": kind,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message}).encode(),
    )


def text_stream(tokens: list[str], input_tokens: int = 7) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}) for t in tokens
    ]
    frames += [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "end_turn"}),
        event(
            "metadata",
            {
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": len(tokens),
                    "totalTokens": input_tokens + len(tokens),
                },
                "metrics": {"latencyMs": 5},
            },
        ),
    ]
    return frames


class _Raw:
    def __init__(self, frames: list[bytes]) -> None:
        self._frames = frames

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from self._frames

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return b"".join(self._frames)

    def close(self) -> None:
        pass


def serve_stream(client: Any, frames: list[bytes], seen: list[Any] | None = None) -> None:
    """Answer the next ConverseStream call with `frames`; record the request in `seen`."""

    def handler(request: Any, **kwargs: Any) -> AWSResponse:
        client.meta.events.unregister("before-send.bedrock-runtime.ConverseStream", handler)
        if seen is not None:
            seen.append(json.loads(request.body))
        headers = {"content-type": "application/vnd.amazon.eventstream"}
        return AWSResponse(request.url, 200, headers, _Raw(frames))

    client.meta.events.register("before-send.bedrock-runtime.ConverseStream", handler)

"""OpenAI's `chat.completion.chunk` stream, byte for byte, built from templates.

Relaying a token is one `orjson.dumps` of its text between a prefix and a suffix made
once per response: no model object, no dict, no logging per chunk.
"""

from __future__ import annotations

from typing import Any

import orjson

from symposia import __version__

DONE = b"data: [DONE]\n\n"
# OpenAI's spec types `system_fingerprint` as a string (its SDKs read null too): ours names
# the server's version, the backend configuration a client can compare answers by.
SYSTEM_FINGERPRINT = f"fp_symposia_{__version__}"


class ChunkEncoder:
    __slots__ = ("_head", "_prefix", "_suffix", "_usage_null")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )[:-1]  # without the closing brace: choices follow
        self._head = b"data: " + head
        self._usage_null = b',"usage":null' if include_usage else b""
        self._prefix = self._head + b',"choices":[{"index":0,"delta":{"content":'
        self._suffix = b'},"logprobs":null,"finish_reason":null}]' + self._usage_null + b"}\n\n"

    def _choice(self, delta: bytes, finish_reason: str | None) -> bytes:
        reason = orjson.dumps(finish_reason)
        return (
            self._head
            + b',"choices":[{"index":0,"delta":'
            + delta
            + b',"logprobs":null,"finish_reason":'
            + reason
            + b"}]"
            + self._usage_null
            + b"}\n\n"
        )

    def role(self) -> bytes:
        return self._choice(b'{"role":"assistant","content":""}', None)

    def content(self, text: str) -> bytes:
        return self._prefix + orjson.dumps(text) + self._suffix

    def finish(self, reason: str) -> bytes:
        return self._choice(b"{}", reason)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        usage = orjson.dumps(
            {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        )
        return self._head + b',"choices":[],"usage":' + usage + b"}\n\n"

    @staticmethod
    def error(error: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"

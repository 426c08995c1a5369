"""OpenAI's chat completions on the wire: the `chat.completion.chunk` stream, byte for
byte, built from templates, and the `chat.completion` object.

Relaying a token is one `orjson.dumps` of its text between a prefix and a suffix made
once per response: no model object, no dict, no logging per chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import orjson

from symposia import __version__
from symposia.domain.models import TurnUsage
from symposia.errors import SymposiaError
from symposia.providers.base import Delta, StreamEnd, TextDelta, ToolCall, ToolCallDelta
from symposia.streaming.last_chunk import LastChunk
from symposia.streaming.openai_errors import openai_error

DONE = b"data: [DONE]\n\n"
# OpenAI's spec types `system_fingerprint` as a string (its SDKs read null too): ours names
# the server's version, the backend configuration a client can compare answers by.
SYSTEM_FINGERPRINT = f"fp_symposia_{__version__}"


class ChunkEncoder:
    """`legacy` speaks the dialect of a client that sent `functions`: a call is a
    `function_call` and its finish reason is `function_call`."""

    __slots__ = ("_args_prefix", "_head", "_legacy", "_prefix", "_suffix", "_usage_null")

    def __init__(
        self,
        completion_id: str,
        created: int,
        model: str,
        include_usage: bool,
        *,
        legacy: bool = False,
    ) -> None:
        self._legacy = legacy
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
        self._args_prefix = self._head + b',"choices":[{"index":0,"delta":{"tool_calls":[{"index":'

    def _choice(self, delta: bytes, finish_reason: str | None, logprobs: bytes = b"null") -> bytes:
        reason = orjson.dumps(finish_reason)
        return (
            self._head
            + b',"choices":[{"index":0,"delta":'
            + delta
            + b',"logprobs":'
            + logprobs
            + b',"finish_reason":'
            + reason
            + b"}]"
            + self._usage_null
            + b"}\n\n"
        )

    def role(self) -> bytes:
        return self._choice(b'{"role":"assistant","content":""}', None)

    def content(self, text: str) -> bytes:
        return self._prefix + orjson.dumps(text) + self._suffix

    def content_logprobs(self, text: str, logprobs: tuple[Any, ...]) -> bytes:
        """Text with the logprobs entries the client asked for (`logprobs: true`)."""
        delta = orjson.dumps({"content": text})
        return self._choice(delta, None, orjson.dumps({"content": logprobs, "refusal": None}))

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        """A piece of a tool call as OpenAI streams it: the first piece of a call has its
        id, type and name, every piece a fragment of the arguments. A fragment alone, the
        bulk of a call, is built from the templates as text is."""
        if delta.id is None and delta.name is None and not self._legacy:
            return (
                self._args_prefix
                + b"%d" % delta.index
                + b',"function":{"arguments":'
                + orjson.dumps(delta.arguments)
                + b"}}]"
                + self._suffix
            )
        function: dict[str, str] = {"arguments": delta.arguments}
        if delta.name is not None:
            function = {"name": delta.name, **function}
        if self._legacy:
            return self._choice(orjson.dumps({"function_call": function}), None)
        call: dict[str, Any] = {"index": delta.index}
        if delta.id is not None:
            call["id"] = delta.id
            call["type"] = "function"
        call["function"] = function
        return self._choice(orjson.dumps({"tool_calls": [call]}), None)

    def finish(self, reason: str) -> bytes:
        return self._choice(b"{}", legacy_reason(reason) if self._legacy else reason)

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


async def encode_stream(
    first: Delta, rest: AsyncGenerator[Delta], encoder: ChunkEncoder, include_usage: bool
) -> AsyncIterator[bytes]:
    """The response's bytes for a stream of deltas whose `first` has arrived.

    Chunks produced at the same moment leave as one write (the role chunk with the first
    output; the finish, usage and `[DONE]` together): each write costs a trip through the
    middleware and a system call. The end leaves only once `rest` is exhausted, so what
    its producer does last (keeping the reply) is done before the client sees the end.
    A failure after output began becomes a final error chunk, without `[DONE]`. The end
    is a `LastChunk`: it leaves with the end of the body.
    """
    head = encoder.role()  # leaves with the first output, or with the end
    end = b""
    try:
        delta: Delta | None = first
        while delta is not None:
            if type(delta) is TextDelta:
                if delta.logprobs is None:
                    yield head + encoder.content(delta.text)
                else:
                    yield head + encoder.content_logprobs(delta.text, delta.logprobs)
                head = b""
            elif type(delta) is ToolCallDelta:
                yield head + encoder.tool_call(delta)
                head = b""
            elif type(delta) is StreamEnd:
                end = head + encoder.finish(delta.finish_reason or "stop")
                if include_usage:
                    end += encoder.usage(delta.prompt_tokens or 0, delta.completion_tokens or 0)
                end += DONE
                head = b""
            delta = await anext(rest, None)
    except SymposiaError as exc:
        end = head + encoder.error(openai_error(exc)[1])
    finally:
        await rest.aclose()
    yield LastChunk(end)


def legacy_reason(reason: str) -> str:
    return "function_call" if reason == "tool_calls" else reason


def completion_object(
    *,
    completion_id: str,
    created: int,
    model: str,
    text: str,
    tool_calls: Sequence[ToolCall],
    finish_reason: str,
    usage: TurnUsage,
    legacy: bool = False,
    logprobs: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """A whole answer as OpenAI's `chat.completion` object; `content` is null when the
    model only called tools, as OpenAI's is. `legacy`: see `ChunkEncoder`; `logprobs`:
    the entries of the answer's tokens, when the client asked for them."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if legacy and tool_calls:
        call = tool_calls[0]  # legacy functions are asked one call at most
        message["function_call"] = {"name": call.name, "arguments": call.arguments}
        finish_reason = legacy_reason(finish_reason)
    elif tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None if logprobs is None else {"content": logprobs, "refusal": None},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        },
    }

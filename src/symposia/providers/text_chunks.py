"""The text of an OpenAI stream's plain chunks, read without parsing each one.

Nearly every chunk of a streamed answer is the same JSON but for its text:
`{"id":..,"created":..,"model":..,"choices":[{"index":0,"delta":{"content":"<text>"},
"logprobs":null,"finish_reason":null}]}`: the id, time and model do not change within a
stream. Parsing each into dicts and looking the text up cost more than a microsecond a
token. `TextTemplate` learns a stream's plain chunk from the first one (parsed, and
checked to say nothing but its text), then reads the text of any chunk that has the same
bytes before and after it, and whose text needs no JSON decoding (no quote, backslash or
control character). Anything else (a tool call, a finish reason, usage, logprobs, an
error, an escaped character) is left to the JSON parser, so what is read is exactly what
parsing would have read.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MARK = b'"delta":{"content":"'
# What a JSON string holds only escaped: past these, the text must be decoded.
_ESCAPED = re.compile(rb'[\x00-\x1f"\\]')
_STRING_END = re.compile(rb'(?:[^"\\]|\\.)*"')


class TextTemplate:
    """The bytes around a stream's plain chunk's text, once one has been seen."""

    __slots__ = ("_head", "_tail")

    def __init__(self) -> None:
        self._head: bytes | None = None
        self._tail = b""

    def parse(self, payload: bytes) -> Any:
        """A chunk's text (a `str`) if it is a plain chunk of this stream, else the chunk
        parsed (learnt from, when it is the first plain one). Raises as `orjson.loads`."""
        text = self.text(payload)
        if text is not None:
            return text
        chunk = orjson.loads(payload)
        self.learn(payload, chunk)
        return chunk

    def text(self, payload: bytes) -> str | None:
        """The chunk's text, if it is a plain chunk of this stream; None otherwise."""
        head, tail = self._head, self._tail
        if head is None or not payload.startswith(head) or not payload.endswith(tail):
            return None
        end = len(payload) - len(tail)
        if end < len(head):
            return None
        text = payload[len(head) : end]
        if _ESCAPED.search(text) is not None:
            return None
        try:
            return text.decode()
        except UnicodeDecodeError:
            return None  # the parser says what is wrong with it

    def learn(self, payload: bytes, chunk: Any) -> None:
        """Take `payload` (parsed as `chunk`) as the template, if it is a plain chunk."""
        if self._head is not None or not _plain(chunk):
            return
        start = payload.find(MARK)
        if start < 0 or payload.find(MARK, start + 1) >= 0:
            return
        start += len(MARK)
        end = _STRING_END.match(payload, start)
        if end is None:
            return
        head, tail = payload[:start], payload[end.end() - 1 :]  # the tail from the quote on
        if self._round_trips(head, tail, chunk):
            self._head, self._tail = head, tail

    @staticmethod
    def _round_trips(head: bytes, tail: bytes, chunk: Any) -> bool:
        """Whether the template with another text parses as `chunk` with that text."""
        probe = "probe text"
        try:
            parsed = orjson.loads(head + probe.encode() + tail)
        except orjson.JSONDecodeError:
            return False
        expected = {**chunk, "choices": [{**chunk["choices"][0], "delta": {"content": probe}}]}
        return bool(parsed == expected)


def _plain(chunk: Any) -> bool:
    """Whether a parsed chunk says nothing but one choice's text."""
    if not isinstance(chunk, dict) or "error" in chunk or chunk.get("usage"):
        return False
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return False
    choice = choices[0]
    delta = choice.get("delta")
    if not isinstance(delta, dict) or list(delta) != ["content"]:
        return False
    if not isinstance(delta["content"], str):
        return False
    return not choice.get("finish_reason") and not choice.get("logprobs")

"""The Responses API's typed stream events as SSE frames: `event:` is the type, `data:`
the event with its `sequence_number` (from 0, one per event of the response)."""

from __future__ import annotations

from typing import Any

import orjson


class ResponseEvents:
    __slots__ = ("_seq",)

    def __init__(self) -> None:
        self._seq = 0

    def emit(self, kind: str, **fields: Any) -> bytes:
        data = orjson.dumps({"type": kind, **fields, "sequence_number": self._seq})
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

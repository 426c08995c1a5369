"""Typed events of a stream. `seq` is per stream, gap-free and strictly increasing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "run_status",
    "turn_start",
    "token",
    "tool_call",
    "tool_result",
    "turn_complete",
    "error",
    "done",
    "person_message",
    "bot_updated",
    "speaker_selected",
    "routing",
    "awaiting_input",
    "verdict",
    "interrupted",
    "resumed",
    "snapshot",
]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of an event log; its `seq` doubles as the SSE `id`."""

    seq: int
    type: EventType
    data: dict[str, Any]
    _encoded: tuple[Callable[[Event], bytes], bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def encoded(self, encode: Callable[[Event], bytes]) -> bytes:
        """`encode(self)`, computed once and kept: a thousand viewers of a stream share one
        encoding. The event knows no wire format; it keeps what its transport made of it."""
        memo = self._encoded
        if memo is not None and memo[0] is encode:
            return memo[1]
        wire = encode(self)
        if memo is None:
            object.__setattr__(self, "_encoded", (encode, wire))  # a memo, not a state change
        return wire

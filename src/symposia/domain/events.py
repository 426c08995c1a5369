"""Typed events of a stream. `seq` is per stream, gap-free and strictly increasing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventType = Literal["run_status", "turn_start", "token", "turn_complete", "error", "done"]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of an event log; its `seq` doubles as the SSE `id`."""

    seq: int
    type: EventType
    data: dict[str, Any]

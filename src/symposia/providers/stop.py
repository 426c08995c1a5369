"""Stop sequences for any provider: cut the stream at the first one, never show a piece.

Providers that support `stop` natively get it too; this makes it exact for those that
don't (the local model, scripted) and harmless for those that do. Text that could be
the start of a stop sequence is held back until the next delta tells.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopFilter:
    __slots__ = ("_held", "_longest", "_stops", "stopped")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self._stops), default=0)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """What may be shown of `text` now; sets `stopped` once a stop sequence appears."""
        if not self._stops:
            return text
        if self.stopped:
            return ""
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        keep = 0
        for size in range(min(self._longest - 1, len(buffer)), 0, -1):
            tail = buffer[-size:]
            if any(s.startswith(tail) for s in self._stops):
                keep = size
                break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep] if keep else buffer

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held

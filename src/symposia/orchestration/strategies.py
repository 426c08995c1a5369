"""Turn strategies: who speaks next."""

from __future__ import annotations

from typing import Protocol

from symposia.domain.models import Run


class TurnStrategy(Protocol):
    def next_speaker(self, run: Run, turn: int) -> int: ...


class RoundRobin:
    """Bots speak in the order they were given, over and over."""

    def next_speaker(self, run: Run, turn: int) -> int:
        return turn % len(run.bots)


STRATEGIES: dict[str, TurnStrategy] = {"round_robin": RoundRobin()}

"""`round_robin`: the agents speak in the order they were given, over and over."""

from __future__ import annotations

from typing import Any

from symposia.domain.models import Run
from symposia.errors import InvalidInputError
from symposia.orchestration.policies.base import AwaitHuman, Decision, PolicyContext, Speak


def next_in_turn(run: Run) -> int:
    """The agent whose turn it is: turn N is agent N mod the number of agents."""
    return run.turn_count % len(run.bots)


class RoundRobin:
    """The agents speak in the order they were given, over and over; an agent of kind
    `human` is waited for in its turn. No settings."""

    name = "round_robin"

    def turns_needed(self, config: dict[str, Any], agents: int) -> int:
        return 1

    def configure(self, config: dict[str, Any], run: Run) -> dict[str, Any]:
        if config:
            raise InvalidInputError(
                f"round_robin takes no policy_config, got {sorted(config)}", "policy_config"
            )
        return {}

    async def decide(self, run: Run, ctx: PolicyContext) -> Decision:
        agent = next_in_turn(run)
        if run.bots[agent].kind == "human":
            return AwaitHuman(agent)
        return Speak((agent,))

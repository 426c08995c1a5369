"""What a turn policy is: given the run as stored, it decides what happens next.

The run loop asks the run's policy before every step: who speaks (one agent, or several in
parallel), wait for a person, or finish and why. A policy keeps no state of its own: what it
must remember (the round, the last speaker, a moderator's verdicts) is in
`run.policy_state`, saved through the context, so a run taken over by another process goes
on under the same state. A policy may call models (a supervisor picking the speaker) and
write events (the choice and its reason) through the context, at the owner's lease epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from symposia.domain.event_types import Payload
from symposia.domain.events import Event
from symposia.domain.models import Run
from symposia.events.emit import emit
from symposia.events.log import EventLog
from symposia.orchestration.generation import Models
from symposia.orchestration.turns import Perspective
from symposia.storage.repositories import RunRepository


@dataclass(frozen=True, slots=True)
class Speak:
    """These agents (bot indexes) speak next: one, or several in parallel (a round), each
    shown what `perspective` gives it (by default the whole conversation from its seat)."""

    agents: tuple[int, ...]
    round: int | None = None
    perspective: Perspective | None = None


@dataclass(frozen=True, slots=True)
class AwaitHuman:
    """The run waits for the person behind agent `agent` (of kind `human`)."""

    agent: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The run ends: `ended_by` names the condition (it is in the run's status and last
    event); `reason` says more, for people."""

    ended_by: str
    reason: str | None = None


Decision = Speak | AwaitHuman | Finish


@dataclass(slots=True)
class PolicyContext:
    """What a policy may use while it decides, as the run's owner at lease `epoch`."""

    runs: RunRepository
    log: EventLog
    models: Models
    epoch: int

    async def emit(self, run: Run, payload: Payload) -> Event:
        return await emit(self.log, run.id, payload, self.epoch)

    async def save_state(self, run: Run, state: dict[str, Any]) -> None:
        """Store the policy's state (before acting on it: a new owner starts from here)."""
        await self.runs.set_policy_state(run.id, state, self.epoch)
        run.policy_state = state


class Policy(Protocol):
    """A turn policy. `configure` checks a run's `policy_config` when it is created (a bad
    one is a 422 naming the field) and returns it complete, defaults filled in."""

    name: str

    def configure(self, config: dict[str, Any], run: Run) -> dict[str, Any]: ...

    def turns_needed(self, config: dict[str, Any], agents: int) -> int:
        """The fewest `max_turns` under which the policy can finish as configured (its
        rounds and a verdict): `configure` raises a default `max_turns` to it, and a
        `max_turns` the client chose below it is refused rather than overridden."""
        ...

    async def decide(self, run: Run, ctx: PolicyContext) -> Decision: ...


DEFAULT_ROUNDS = 3  # `max_rounds` of the policies that speak in rounds


def configured_rounds(config: dict[str, Any]) -> int:
    """`max_rounds`, or its default where it is absent or not a number (`configure`
    refuses those)."""
    rounds = config.get("max_rounds", DEFAULT_ROUNDS)
    return rounds if isinstance(rounds, int) and not isinstance(rounds, bool) else DEFAULT_ROUNDS

"""Turn policies, by the name a run gives in `policy`."""

from __future__ import annotations

from symposia.errors import InvalidInputError
from symposia.orchestration.policies.base import (
    AwaitHuman,
    Decision,
    Finish,
    Policy,
    PolicyContext,
    Speak,
)
from symposia.orchestration.policies.moderated import Moderated
from symposia.orchestration.policies.round_robin import RoundRobin
from symposia.orchestration.policies.rounds import Rounds
from symposia.orchestration.policies.selector import Selector

POLICIES: dict[str, Policy] = {
    policy.name: policy for policy in (RoundRobin(), Rounds(), Selector(), Moderated())
}


def policy_named(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}", "policy"
        ) from None


__all__ = [
    "POLICIES",
    "AwaitHuman",
    "Decision",
    "Finish",
    "Policy",
    "PolicyContext",
    "Speak",
    "policy_named",
]

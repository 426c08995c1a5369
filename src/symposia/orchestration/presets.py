"""Presets: the common set-ups, so a run can start from a topic alone.

Each is the body of `POST /api/run` without its topic; a request naming a preset may still
give any field, which then replaces the preset's. Bots take the server's DEFAULT_MODEL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symposia.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    description: str
    body: dict[str, Any]

    def with_model(self, model: str) -> dict[str, Any]:
        """The preset's body, its bots on `model`."""
        bots = [{"model": model, **bot} for bot in self.body.get("bots", [])]
        return {**self.body, "bots": bots}


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "debate",
            "Two debaters answer each other in turn, for and against, six turns.",
            {
                "policy": "round_robin",
                "max_turns": 6,
                "bots": [
                    {
                        "name": "Proponent",
                        "system_prompt": "You argue for the motion in two or three sentences, "
                        "answering the last speaker directly.",
                    },
                    {
                        "name": "Opponent",
                        "system_prompt": "You argue against the motion in two or three "
                        "sentences, answering the last speaker directly.",
                    },
                ],
            },
        ),
        Preset(
            "panel",
            "Three specialists; a supervisor picks who speaks next (policy `selector`). "
            "Ends when one says TERMINATE, or after eight turns.",
            {
                "policy": "selector",
                "max_turns": 8,
                "termination": {"mention": "TERMINATE"},
                "bots": [
                    {
                        "name": "Analyst",
                        "description": "breaks the question down and weighs the evidence",
                        "system_prompt": "You are the analyst of a panel. Be precise and brief.",
                    },
                    {
                        "name": "Practitioner",
                        "description": "knows how things work in practice",
                        "system_prompt": "You are the practitioner of a panel. Give concrete "
                        "experience, briefly.",
                    },
                    {
                        "name": "Skeptic",
                        "description": "finds the weak points and the risks",
                        "system_prompt": "You are the skeptic of a panel. Point out what is "
                        "weak, briefly. Say TERMINATE when the panel has answered well.",
                    },
                ],
            },
        ),
        Preset(
            "du2023",
            "Three agents answer in parallel for three rounds, each seeing the others' "
            "answers, then a majority vote (Du et al. 2023).",
            {
                "policy": "rounds",
                "policy_config": {"max_rounds": 3, "aggregation": "vote"},
                "max_turns": 10,  # three rounds of three agents, and the vote
                "bots": [
                    {
                        "name": f"Agent {n}",
                        "system_prompt": "Reason step by step. End with a "
                        "line 'Answer: <your answer>'.",
                    }
                    for n in (1, 2, 3)
                ],
            },
        ),
        Preset(
            "mad",
            "An affirmative and a negative side debate; a moderator ends it once one side "
            "has won, else a judge decides after three rounds (Liang et al. 2023).",
            {
                "policy": "moderated",
                "policy_config": {"max_rounds": 3},
                "max_turns": 7,  # three rounds of two sides, and the judge
                "bots": [
                    {
                        "name": "Affirmative",
                        "system_prompt": "You are the affirmative side. Argue for your answer "
                        "and against the other side's, in a few sentences.",
                    },
                    {
                        "name": "Negative",
                        "system_prompt": "You are the negative side. You disagree with the "
                        "affirmative side; give your own answer and reasons, in a few "
                        "sentences.",
                    },
                ],
            },
        ),
    )
}


def preset_named(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}", "preset"
        ) from None

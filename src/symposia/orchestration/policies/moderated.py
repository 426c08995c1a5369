"""`moderated`: two sides debate and a moderator judges each round (Liang et al. 2023,
"Encouraging Divergent Thinking in Large Language Models through Multi-Agent Debate").

Each round the first side speaks, then the second (the run's two agents, in the order
given); then the moderator is asked, as JSON, whether one side has won:

    {"decided": true, "winner": "<side's name>", "reason": "...", "answer": "..."}

The answer is parsed strictly (a JSON object, alone or in a ``` block, with a boolean
`decided` and, when decided, a `winner` naming a side); a bad one is asked again, told
why, up to `max_attempts` times, then taken as "not decided". A decision ends the debate
(`ended_by: moderator`); otherwise, after `max_rounds`, a judge reads the debate and gives
the final verdict the same way (`ended_by: max_rounds`). The verdict is a `verdict` event
and is in the export; every round's assessment is kept in the run's `moderation`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from symposia.domain.event_types import Verdict
from symposia.domain.models import Run
from symposia.errors import InvalidInputError
from symposia.orchestration.generation import answer_of, object_format
from symposia.orchestration.policies.base import (
    DEFAULT_ROUNDS,
    Decision,
    Finish,
    PolicyContext,
    Speak,
    configured_rounds,
)
from symposia.orchestration.policies.decisions import store_verdict
from symposia.providers.base import ChatMessage, ResponseFormat

KEYS = {"moderator_model", "judge_model", "max_rounds", "max_attempts"}
MODERATOR = (
    "You moderate a debate on: {topic}\n\nThe sides: {sides}.\n\nThe debate so far:\n"
    "{debate}\n\nHas one side clearly won? Answer with a JSON object only: "
    '{{"decided": true or false, "winner": "<name of the winning side, or null>", '
    '"reason": "<one sentence>", "answer": "<the answer to the topic, if decided>"}}'
)
JUDGE = (
    "You judge a debate on: {topic}\n\nThe sides: {sides}.\n\nThe whole debate:\n{debate}\n\n"
    "Decide which side won. Answer with a JSON object only: "
    '{{"decided": true, "winner": "<name of the winning side>", '
    '"reason": "<one sentence>", "answer": "<the answer to the topic>"}}'
)
FENCE = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL)


class Moderated:
    """Two sides debate; after each round a moderator says, as JSON, whether one has won;
    the debate ends when it has, else a judge decides after `max_rounds` (Liang et al.
    2023). Settings: `moderator_model` and `judge_model` (default: the first side's),
    `max_rounds` (3), `max_attempts` (3)."""

    name = "moderated"

    def turns_needed(self, config: dict[str, Any], agents: int) -> int:
        """Both sides in every round, then the judge's turn."""
        return 2 * configured_rounds(config) + 1

    def configure(self, config: dict[str, Any], run: Run) -> dict[str, Any]:
        unknown = set(config) - KEYS
        if unknown:
            raise InvalidInputError(
                f"moderated does not take {sorted(unknown)}; it takes {sorted(KEYS)}",
                "policy_config",
            )
        if [bot.kind for bot in run.bots] != ["bot", "bot"]:
            raise InvalidInputError("moderated takes exactly two agents: the two sides", "bots")
        models = {}
        for key in ("moderator_model", "judge_model"):
            model = config.get(key, run.bots[0].model)
            if not isinstance(model, str) or "/" not in model:
                raise InvalidInputError(f"{key} must be `provider/model`", f"policy_config.{key}")
            models[key] = model
        numbers = {}
        for key, default, most in (("max_rounds", DEFAULT_ROUNDS, 20), ("max_attempts", 3, 5)):
            value = config.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise InvalidInputError(
                    f"{key} must be a whole number from 1 to {most}", f"policy_config.{key}"
                )
            numbers[key] = value
        run.max_turns = max(run.max_turns, self.turns_needed(numbers, 2))  # room for all
        return {**models, **numbers}

    async def decide(self, run: Run, ctx: PolicyContext) -> Decision:
        state = dict(run.policy_state)
        assessed: list[dict[str, Any]] = list(state.get("moderation", []))
        current = len(assessed)
        spoken = {m.bot_index for m in run.messages if m.round == current}
        for side in (0, 1):
            if side not in spoken:
                return Speak((side,), round=current)
        config = run.policy_config
        last = current + 1 >= int(config["max_rounds"])
        assessment = await self._ask(run, ctx, MODERATOR, str(config["moderator_model"]))
        assessed.append({**assessment, "round": current})
        state.update(moderation=assessed, rounds_done=current + 1)
        if assessment["decided"] or last:
            if not assessment["decided"]:
                assessment = await self._ask(run, ctx, JUDGE, str(config["judge_model"]))
                assessment["decided"] = True
            method = "moderator" if assessed[-1]["decided"] else "judge"
            verdict = Verdict(
                method,
                str(assessment.get("answer") or ""),
                {},
                str(assessment.get("reason") or ""),
                assessment.get("winner"),
            )
            state.update(decided=method == "moderator")
            await store_verdict(run, ctx, state, verdict)
            return Finish("moderator" if method == "moderator" else "max_rounds")
        await ctx.save_state(run, state)
        return Speak((0,), round=current + 1)

    async def _ask(self, run: Run, ctx: PolicyContext, template: str, model: str) -> dict[str, Any]:
        sides = [bot.name for bot in run.bots]
        debate = "\n".join(
            f"[round {m.round}] {m.author}: {m.content}" for m in run.messages if m.content
        )
        prompt = template.format(topic=run.topic, sides=" and ".join(sides), debate=debate)
        messages = [ChatMessage("user", prompt)]
        for _ in range(int(run.policy_config["max_attempts"])):
            said = await answer_of(ctx.models, model, messages, 400, assessment_schema(sides))
            parsed, problem = _parse(said, sides)
            if parsed is not None:
                return parsed
            messages += [
                ChatMessage("assistant", said),
                ChatMessage("user", f"{problem}. Answer again with the JSON object only."),
            ]
        return {"decided": False, "winner": None, "reason": "no valid assessment", "answer": ""}


def assessment_schema(sides: list[str]) -> ResponseFormat:
    """The assessment as a JSON schema, the winner one of the sides (or null): where the
    moderator's provider takes structured output, it can answer nothing else."""
    return object_format(
        "assessment",
        {
            "decided": {"type": "boolean"},
            "winner": {"enum": [*sides, None]},
            "reason": {"type": "string", "maxLength": 300},
            "answer": {"type": "string", "maxLength": 600},
        },
    )


def _parse(text: str, sides: list[str]) -> tuple[dict[str, Any] | None, str]:
    """The assessment in `text`, or None and what is wrong with it."""
    fenced = FENCE.search(text)
    raw = fenced.group(1) if fenced else text.strip()
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "That is not a JSON object"
    if not isinstance(data, dict) or not isinstance(data.get("decided"), bool):
        return None, "The object needs a boolean `decided`"
    winner = data.get("winner")
    if data["decided"] and winner not in sides:
        return None, f"`winner` must be one of {', '.join(sides)}"
    return {
        "decided": data["decided"],
        "winner": winner if data["decided"] else None,
        "reason": str(data.get("reason") or ""),
        "answer": str(data.get("answer") or ""),
    }, ""

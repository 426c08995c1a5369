"""`rounds`: every round, all agents answer the same question in parallel, each seeing the
other agents' answers from the previous round (Du et al. 2023, "Improving Factuality and
Reasoning in Language Models through Multiagent Debate").

After `max_rounds` rounds the run ends (`ended_by: max_rounds`), with an optional final
answer (`aggregation`):
- `vote`: the majority over the answers of the last round. An agent's answer is what
  follows the last `Answer:` in its text (case does not matter), else its last non-empty
  line; compared without case, surrounding spaces, quotes, `*` and a final full stop. A
  tie goes to the answer given first (by the agent listed first).
- `judge`: a judge model (`judge_model`, by default the first agent's) reads the question
  and the last round's answers and gives the final answer.
The result is a `verdict` event and is in the run's export (`verdict`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from symposia.domain.event_types import Verdict
from symposia.domain.models import Message, Run
from symposia.errors import InvalidInputError
from symposia.orchestration import prompt_template
from symposia.orchestration.generation import answer_of
from symposia.orchestration.policies.base import (
    DEFAULT_ROUNDS,
    Decision,
    Finish,
    PolicyContext,
    Speak,
    configured_rounds,
)
from symposia.orchestration.policies.decisions import store_verdict
from symposia.providers.base import ChatMessage

KEYS = {"max_rounds", "aggregation", "judge_model", "judge_prompt"}
DEFAULT_JUDGE_PROMPT = (
    "Several agents answered this question:\n{topic}\n\nTheir final answers:\n{answers}\n\n"
    "Give the single best answer, then one sentence on why. Start with 'Answer:'."
)
UPDATE = (
    "These are the answers of the other agents to the question:\n{answers}\n\n"
    "Using their reasoning as additional advice, give an updated answer. "
    "End with a line 'Answer: <your answer>'."
)
ANSWER = re.compile(r"answer\s*:\s*(.+)", re.IGNORECASE)


class Rounds:
    """All agents answer in parallel, round after round, each seeing the others' answers
    from the previous round (Du et al. 2023). Settings: `max_rounds` (3), `aggregation`
    (`vote` or `judge`, none by default), `judge_model`, `judge_prompt` (with {topic} and
    {answers})."""

    name = "rounds"

    def turns_needed(self, config: dict[str, Any], agents: int) -> int:
        """Every agent in every round, then the verdict's turn."""
        return configured_rounds(config) * agents + 1

    def configure(self, config: dict[str, Any], run: Run) -> dict[str, Any]:
        unknown = set(config) - KEYS
        if unknown:
            raise InvalidInputError(
                f"rounds does not take {sorted(unknown)}; it takes {sorted(KEYS)}",
                "policy_config",
            )
        rounds = config.get("max_rounds", DEFAULT_ROUNDS)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 20:
            raise InvalidInputError(
                "max_rounds must be a whole number from 1 to 20", "policy_config.max_rounds"
            )
        aggregation = config.get("aggregation")
        if aggregation not in (None, "vote", "judge"):
            raise InvalidInputError(
                "aggregation is `vote`, `judge` or absent", "policy_config.aggregation"
            )
        judge = config.get("judge_model", run.bots[0].model)
        if not isinstance(judge, str) or "/" not in judge:
            raise InvalidInputError(
                "judge_model must be `provider/model`", "policy_config.judge_model"
            )
        prompt = config.get("judge_prompt", DEFAULT_JUDGE_PROMPT)
        problem = prompt_template.invalid(prompt, ("topic", "answers"), "answers")
        if problem is not None:
            raise InvalidInputError(f"judge_prompt {problem}", "policy_config.judge_prompt")
        # Room for every round: the policy itself ends the run after the last one, with
        # its verdict (a max_turns reached first would end it without one).
        agents = sum(1 for bot in run.bots if bot.kind == "bot")
        run.max_turns = max(run.max_turns, self.turns_needed(config, agents))
        return {
            "max_rounds": rounds,
            "aggregation": aggregation,
            "judge_model": judge,
            "judge_prompt": prompt,
        }

    async def decide(self, run: Run, ctx: PolicyContext) -> Decision:
        agents = [i for i, bot in enumerate(run.bots) if bot.kind == "bot"]
        by_round = _answers_by_round(run)
        done = _complete_rounds(run, by_round)
        if run.policy_state.get("rounds_done") != done:
            await ctx.save_state(run, {**run.policy_state, "rounds_done": done})
        config = run.policy_config
        if done >= int(config["max_rounds"]):
            if config.get("aggregation") and "verdict" not in run.policy_state:
                await self._aggregate(run, ctx, by_round[done - 1], agents)
            return Finish("max_rounds")
        missing = tuple(i for i in agents if i not in by_round.get(done, {}))
        return Speak(missing, round=done, perspective=_seen_in_round)

    async def _aggregate(
        self, run: Run, ctx: PolicyContext, last: dict[int, Message], agents: list[int]
    ) -> None:
        config = run.policy_config
        answers = {i: extract(last[i].content) for i in agents if i in last}
        if config["aggregation"] == "vote":
            counts = Counter(_norm(a) for a in answers.values() if a)
            if counts:
                best = max(counts.values())
                winner = next(a for a in answers.values() if counts.get(_norm(a)) == best)
            else:
                winner = ""
            verdict = Verdict("vote", winner, {a: n for a, n in counts.items()}, "")
        else:
            listing = "\n".join(f"- {run.bots[i].name}: {a}" for i, a in answers.items())
            values = {"topic": run.topic, "answers": listing}  # as plain text: prompt_template
            prompt = prompt_template.fill(str(config["judge_prompt"]), values)
            said = await answer_of(
                ctx.models, str(config["judge_model"]), [ChatMessage("user", prompt)], 400
            )
            verdict = Verdict("judge", extract(said), {}, said.strip()[:2000])
        await store_verdict(run, ctx, run.policy_state, verdict)


def extract(text: str) -> str:
    """An agent's answer: after its last `Answer:`, else its last non-empty line."""
    found = ANSWER.findall(text)
    if found:
        return str(found[-1]).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _norm(answer: str) -> str:
    return answer.strip().strip("\"'`*").rstrip(".").strip().casefold()


def _answers_by_round(run: Run) -> dict[int, dict[int, Message]]:
    rounds: dict[int, dict[int, Message]] = {}
    for message in run.messages:
        if message.bot_index is not None and message.round is not None:
            rounds.setdefault(message.round, {})[message.bot_index] = message
    return rounds


def _complete_rounds(run: Run, by_round: dict[int, dict[int, Message]]) -> int:
    agents = sum(1 for bot in run.bots if bot.kind == "bot")
    done = 0
    while len(by_round.get(done, {})) == agents:
        done += 1
    return done


def _others(run: Run, answers: dict[int, Message], bot_index: int) -> str:
    return "\n\n".join(
        f"{run.bots[i].name}: {m.content}"
        for i, m in sorted(answers.items())
        if i != bot_index and m.content
    )


def _seen_in_round(run: Run, bot_index: int) -> list[ChatMessage]:
    """What an agent answering round R sees: the question; for each earlier round r, the
    others' answers of round r - 1 (from the second round on, with Du et al.'s request to
    update) and its own answer of round r; then the others' answers of round R - 1. Never
    the answers of round R, even those already given (a round is answered blind)."""
    bot = run.bots[bot_index]
    by_round = _answers_by_round(run)
    current = _complete_rounds(run, by_round)
    messages: list[ChatMessage] = []
    if bot.system_prompt:
        messages.append(ChatMessage("system", bot.system_prompt))
    messages.append(ChatMessage("user", run.topic))
    for number in range(current + 1):
        if number > 0:
            others = _others(run, by_round.get(number - 1, {}), bot_index)
            messages.append(ChatMessage("user", UPDATE.format(answers=others or "(none)")))
        own = by_round.get(number, {}).get(bot_index)
        if number < current and own is not None and own.content:
            messages.append(ChatMessage("assistant", own.content))
    return messages

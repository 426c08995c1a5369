"""`selector`: a supervisor model picks who speaks next (AutoGen's SelectorGroupChat).

Before each turn the supervisor is shown the agents (names and descriptions), the history,
and the names it may choose from: by default not the last speaker (`allow_repeat`), and,
when `transitions` is given, only those the last speaker may hand over to. Its answer must
name exactly one of them (a name alone, or a sentence naming one and no other; case does
not matter). Otherwise it is asked again, told why, up to `max_attempts` times; then the
choice falls back to the next allowed agent after the last speaker, in the order given.
The choice is saved before the turn starts, with the id of the `speaker_selected` event
that then streams it with the supervisor's answer (a process taking the run over does not
ask again: `policies/decisions.py`).
"""

from __future__ import annotations

import re
from typing import Any

from symposia.domain.event_types import SpeakerSelected
from symposia.domain.models import MessageStatus, Run
from symposia.errors import InvalidInputError
from symposia.observability.genai_spans import CONVERSATION_ID, choice, chose
from symposia.orchestration import prompt_template
from symposia.orchestration.generation import answer_of, object_format
from symposia.orchestration.policies.base import Decision, PolicyContext, Speak
from symposia.orchestration.policies.decisions import next_event_id
from symposia.providers.base import ChatMessage, ResponseFormat

DEFAULT_PROMPT = (
    "You are the moderator of a conversation about: {topic}\n\n"
    "The participants:\n{roles}\n\n"
    "The conversation so far:\n{history}\n\n"
    "Who should speak next? Choose one of: {candidates}. "
    "Answer with the name only."
)
HISTORY_CHARS = 6000  # the end of the conversation the supervisor is shown
ANSWER_CHARS = 300  # what of the supervisor's answer the event carries
KEYS = {"model", "prompt", "max_attempts", "allow_repeat", "transitions"}
PLACEHOLDERS = ("topic", "roles", "history", "candidates")

CUT_EMPTY = "(cut off before a word)"
ASKED_BY_A_STOPPED_SERVER = (
    "(the supervisor was asked for this turn by a server that stopped; not asked again)"
)


class Selector:
    """A supervisor model picks the next speaker from the agents' names and descriptions
    and the history. Settings: `model` (default: the first agent's), `prompt` (with
    {topic}, {roles}, {history}, {candidates}), `max_attempts` (3), `allow_repeat`
    (false), `transitions` ({name: [names it may hand over to]})."""

    name = "selector"

    def turns_needed(self, config: dict[str, Any], agents: int) -> int:
        return 1

    def configure(self, config: dict[str, Any], run: Run) -> dict[str, Any]:
        unknown = set(config) - KEYS
        if unknown:
            raise InvalidInputError(
                f"selector does not take {sorted(unknown)}; it takes {sorted(KEYS)}",
                "policy_config",
            )
        names = [bot.name for bot in run.bots]
        model = config.get("model", run.bots[0].model)
        if not isinstance(model, str) or "/" not in model:
            raise InvalidInputError("model must be `provider/model`", "policy_config.model")
        prompt = config.get("prompt", DEFAULT_PROMPT)
        problem = prompt_template.invalid(prompt, PLACEHOLDERS, "candidates")
        if problem is not None:
            raise InvalidInputError(f"prompt {problem}", "policy_config.prompt")
        attempts = config.get("max_attempts", 3)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 5:
            raise InvalidInputError(
                "max_attempts must be a whole number from 1 to 5", "policy_config.max_attempts"
            )
        repeat = config.get("allow_repeat", False)
        if not isinstance(repeat, bool):
            raise InvalidInputError(
                "allow_repeat must be true or false", "policy_config.allow_repeat"
            )
        transitions = config.get("transitions")
        if transitions is not None:
            _check_transitions(transitions, names)
        return {
            "model": model,
            "prompt": prompt,
            "max_attempts": attempts,
            "allow_repeat": repeat,
            "transitions": transitions,
        }

    async def decide(self, run: Run, ctx: PolicyContext) -> Decision:
        """`_decide`, as a `select_speaker` span when tracing is on."""
        model = str(run.policy_config.get("model", ""))
        with choice("select_speaker", model, **{CONVERSATION_ID: run.id}) as span:
            decision = await self._decide(run, ctx)
            if span is not None and run.policy_state.get("choices"):
                made = run.policy_state["choices"][-1]
                chose(span, made["name"], made["attempts"], made["fallback"], made["answer"])
        return decision

    async def _decide(self, run: Run, ctx: PolicyContext) -> Decision:
        state = run.policy_state
        if state.get("turn") == run.turn_count and "chosen" in state:
            return Speak((int(state["chosen"]),))  # chosen before a takeover: not asked again
        config = run.policy_config
        candidates = _candidates(run, config)
        answer, attempts, chosen = "", 0, None
        if len(candidates) == 1:
            chosen = candidates[0]
        elif state.get("asking") == run.turn_count:
            # A process that stopped had asked the supervisor for this turn (maybe paid
            # for): it is not asked again, the fallback chooses.
            answer = ASKED_BY_A_STOPPED_SERVER
        else:
            await ctx.save_state(run, {**state, "asking": run.turn_count})
            state = run.policy_state
            messages = [ChatMessage("user", _render(run, config["prompt"], candidates))]
            for attempts in range(1, int(config["max_attempts"]) + 1):  # noqa: B007
                answer = await answer_of(
                    ctx.models,
                    config["model"],
                    messages,
                    response_format=choice_schema(run, candidates),
                )
                chosen = _parse(answer, run, candidates)
                if chosen is not None:
                    break
                messages += [
                    ChatMessage("assistant", answer),
                    ChatMessage(
                        "user",
                        "That is not one of the names allowed. Answer with exactly one of: "
                        + ", ".join(run.bots[i].name for i in candidates),
                    ),
                ]
        fallback = chosen is None
        if chosen is None:
            chosen = _next_after(run, candidates)
        event = SpeakerSelected(
            chosen, run.bots[chosen].name, answer[:ANSWER_CHARS], attempts, fallback
        )
        # Every choice is kept (the event stream is not kept for ever): a transcript shows
        # who chose each turn's speaker and why (export/build.py).
        at = await next_event_id(run, ctx)
        choices = [
            *state.get("choices", []),
            {"turn": run.turn_count, **event.data(), "event_id": at},
        ]
        await ctx.save_state(
            run, {**state, "turn": run.turn_count, "chosen": chosen, "choices": choices}
        )
        await ctx.emit(run, event)
        return Speak((chosen,))


def choice_schema(run: Run, candidates: list[int]) -> ResponseFormat:
    """The choice as a JSON schema, `{"name": <one of the candidates>}`: where the
    supervisor's provider takes structured output, it can name no one else (the answer
    then names exactly one agent, which `_parse` reads)."""
    names = [run.bots[i].name for i in candidates]
    return object_format("next_speaker", {"name": {"enum": names}})


def _check_transitions(transitions: Any, names: list[str]) -> None:
    field = "policy_config.transitions"
    if not isinstance(transitions, dict):
        raise InvalidInputError("transitions maps a name to the names it may hand over to", field)
    for source, targets in transitions.items():
        if source not in names:
            raise InvalidInputError(f"transitions names {source!r}, not an agent", field)
        if not isinstance(targets, list) or not targets:
            raise InvalidInputError(f"transitions of {source!r} must be a non-empty list", field)
        for target in targets:
            if target not in names:
                raise InvalidInputError(f"transitions names {target!r}, not an agent", field)


def _last_speaker(run: Run) -> int | None:
    turns = [m.bot_index for m in run.messages if m.bot_index is not None]
    return turns[-1] if turns else None


def _candidates(run: Run, config: dict[str, Any]) -> list[int]:
    """The agents that may speak next, in the order given."""
    agents = [i for i, bot in enumerate(run.bots) if bot.kind == "bot"]
    last = _last_speaker(run)
    if last is None:
        return agents
    transitions = config.get("transitions") or {}
    allowed = transitions.get(run.bots[last].name)
    if allowed is not None:
        agents = [i for i in agents if run.bots[i].name in allowed]
    if not config.get("allow_repeat"):
        others = [i for i in agents if i != last]
        agents = others or agents
    return agents or [last]


def _render(run: Run, prompt: str, candidates: list[int]) -> str:
    roles = "\n".join(
        f"- {bot.name}: {bot.description or bot.system_prompt[:200] or 'a participant'}"
        for bot in run.bots
    )
    # A turn cut before its first word still took its place: the supervisor is told so.
    history = "\n".join(
        f"{m.author}: {m.content or CUT_EMPTY}"
        for m in run.messages
        if m.content or m.status is MessageStatus.PARTIAL
    )
    # Filled as plain text, never by str.format (see prompt_template).
    values = {
        "topic": run.topic,
        "roles": roles,
        "history": history[-HISTORY_CHARS:] or "(nothing yet)",
        "candidates": ", ".join(run.bots[i].name for i in candidates),
    }
    return prompt_template.fill(prompt, values)


def _parse(answer: str, run: Run, candidates: list[int]) -> int | None:
    """The one allowed agent the answer names, or None (none, or several)."""
    text = answer.strip().strip(".\"'`*").casefold()
    exact = [i for i in candidates if run.bots[i].name.casefold() == text]
    if exact:
        return exact[0]
    named = [
        i
        for i in candidates
        if re.search(rf"(?<!\w){re.escape(run.bots[i].name.casefold())}(?!\w)", text)
    ]
    return named[0] if len(named) == 1 else None


def _next_after(run: Run, candidates: list[int]) -> int:
    last = _last_speaker(run)
    if last is None:
        return candidates[0]
    later = [i for i in candidates if i > last]
    return later[0] if later else candidates[0]

"""A panel's supervisor routes a user's question to the specialist best suited to it.

The supervisor (the conversation's `default_model`) is shown the specialists (names and
descriptions), the end of the conversation and the question, and must answer with one
JSON object: `{"agent": "<a name, or supervisor>", "reason": "<why>"}` (a Markdown code
fence around it is allowed; nothing else is). `agent` must be one of the names (case does
not matter) or `supervisor`, to answer itself; where the supervisor's provider takes
structured output, the answer is asked for with that schema, names as an enum, so the
local model (held by a grammar) answers validly. Otherwise it is asked again, told why, up
to the panel's `max_attempts`; then the panel's `fallback` answers. A supervisor whose
model fails is not asked again: the fallback answers at once, and the routing says why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from symposia.domain.models import SUPERVISOR, Message, Panel
from symposia.observability.genai_spans import choice, chose
from symposia.orchestration import prompt_template
from symposia.orchestration.generation import (
    GenerationFailedError,
    Models,
    answer_of,
    object_format,
)
from symposia.providers.base import ChatMessage, ResponseFormat

DEFAULT_PROMPT = (
    "You are the supervisor of a team of specialists. Route the user's latest message to "
    "the specialist best suited to answer it, or answer it yourself if none is.\n\n"
    "The specialists:\n{agents}\n\n"
    "The conversation so far:\n{history}\n\n"
    "The user's latest message:\n{question}\n\n"
    'Answer with one JSON object and nothing else: {{"agent": "<one of {names}>", '
    '"reason": "<why, in a few words>"}}'
)
PLACEHOLDERS = ("agents", "history", "question", "names")
HISTORY_CHARS = 4000  # the end of the conversation the supervisor is shown
QUESTION_CHARS = 4000
# The longest routing prompt a supervisor is sent (a panel's own prompt, filled in).
ROUTING_PROMPT_MAX = 64_000
REASON_CHARS = 300  # what of the supervisor's reason the routing keeps
ROUTING_MAX_TOKENS = 200
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Routing:
    """Who answers and why; stored with the reply and its message, sent as `routing`."""

    agent: str
    reason: str
    attempts: int
    fallback: bool
    model: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "agent": self.agent,
            "reason": self.reason,
            "attempts": self.attempts,
            "fallback": self.fallback,
            "model": self.model,
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def _texts(panel: Panel, history: list[Message], question: str) -> dict[str, str]:
    past = "\n".join(f"{m.author}: {m.content}" for m in history if m.content)
    return {
        "agents": "\n".join(f"- {agent.name}: {agent.description}" for agent in panel.agents),
        "history": past[-HISTORY_CHARS:] or "(nothing yet)",
        "question": question[:QUESTION_CHARS],
        "names": ", ".join([agent.name for agent in panel.agents] + [SUPERVISOR]),
    }


def check_prompt(panel: Panel) -> str | None:
    """Why the panel's `prompt` cannot be a routing prompt, or None when it can: it uses
    only the four placeholders (and `{{`, `}}` for braces), holds `{question}`, and,
    filled with the longest history and question, stays within ROUTING_PROMPT_MAX."""
    prompt = panel.prompt
    if prompt is None:
        return None
    wrong = prompt_template.problems(prompt, PLACEHOLDERS)
    if wrong:
        return (
            f"the prompt can use only {{agents}}, {{history}}, {{question}} and {{names}} "
            f"(write {{{{ and }}}} for a brace), not {', '.join(wrong)}"
        )
    if prompt_template.count(prompt, "question") == 0:
        return "the prompt must contain {question}"
    longest = _texts(panel, [], "")
    longest["history"], longest["question"] = "h" * HISTORY_CHARS, "q" * QUESTION_CHARS
    size = len(prompt) + sum(
        prompt_template.count(prompt, key) * len(text) for key, text in longest.items()
    )
    if size > ROUTING_PROMPT_MAX:
        return (
            f"the prompt, filled in, could reach {size} characters; the limit is "
            f"{ROUTING_PROMPT_MAX} (each placeholder adds its text every time it appears)"
        )
    return None


def render(panel: Panel, history: list[Message], question: str) -> str:
    """The routing prompt, filled in as plain text (never `str.format`: see
    `prompt_template`), at most ROUTING_PROMPT_MAX characters even for a prompt stored
    before prompts were checked."""
    filled = prompt_template.fill(panel.prompt or DEFAULT_PROMPT, _texts(panel, history, question))
    return filled[:ROUTING_PROMPT_MAX]


def parse(answer: str, panel: Panel) -> tuple[str, str] | str:
    """`(agent, reason)` from a valid answer; otherwise what is wrong with it."""
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        return "the answer is not a JSON object"
    if not isinstance(data, dict) or not isinstance(data.get("agent"), str):
        return 'the answer must be a JSON object with a string "agent"'
    wanted = data["agent"].strip().casefold()
    if wanted == SUPERVISOR:
        agent = SUPERVISOR
    else:
        named = next((a.name for a in panel.agents if a.name.casefold() == wanted), None)
        if named is None:
            return f"{data['agent']!r} is not one of the names allowed"
        agent = named
    reason = data.get("reason")
    return agent, (reason if isinstance(reason, str) else "").strip()[:REASON_CHARS]


def answer_schema(panel: Panel) -> ResponseFormat:
    """The routing answer as a JSON schema, the names an enum: a supervisor whose provider
    takes structured output (the local model, by a grammar) cannot answer anything else."""
    names = [agent.name for agent in panel.agents] + [SUPERVISOR]
    return object_format(
        "routing",
        {"agent": {"enum": names}, "reason": {"type": "string", "maxLength": REASON_CHARS}},
    )


async def route(
    models: Models, supervisor: str, panel: Panel, history: list[Message], question: str
) -> Routing:
    """`_route`, as a `route_question` span when tracing is on."""
    with choice("route_question", supervisor) as span:
        routing = await _route(models, supervisor, panel, history, question)
        chose(span, routing.agent, routing.attempts, routing.fallback, routing.reason)
    return routing


async def _route(
    models: Models, supervisor: str, panel: Panel, history: list[Message], question: str
) -> Routing:
    """Ask `supervisor` who answers `question` (see the module docstring)."""
    allowed = ", ".join([agent.name for agent in panel.agents] + [SUPERVISOR])
    messages = [ChatMessage("user", render(panel, history, question))]
    schema = answer_schema(panel)
    problem = ""
    for attempt in range(1, panel.max_attempts + 1):
        try:
            answer = await answer_of(models, supervisor, messages, ROUTING_MAX_TOKENS, schema)
        except GenerationFailedError as exc:
            reason = "the supervisor could not be asked; the fallback answers"
            return Routing(panel.fallback, reason, attempt, True, supervisor, exc.failure.message)
        parsed = parse(answer, panel)
        if isinstance(parsed, tuple):
            return Routing(parsed[0], parsed[1], attempt, False, supervisor)
        problem = parsed
        messages += [
            ChatMessage("assistant", answer),
            ChatMessage(
                "user",
                f"That answer cannot be used: {problem}. Answer with one JSON object "
                f'and nothing else: {{"agent": "<one of {allowed}>", "reason": "<why>"}}',
            ),
        ]
    reason = f"no valid choice in {panel.max_attempts} attempts ({problem}); the fallback answers"
    return Routing(panel.fallback, reason, panel.max_attempts, True, supervisor)

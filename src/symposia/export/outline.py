"""What the human-readable exports (Markdown, PDF) say, apart from how they draw it.

Both renderers walk the same outline: a title, facts about the whole (status, policy,
times, totals), the participants and their settings, edits, the policy's verdicts, then
one section per message with a heading and a line of metadata. Values are plain text;
each renderer escapes and lays them out in its own way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from symposia.export.transcript import (
    ConversationTranscript,
    Entry,
    Participant,
    RunTranscript,
)

AnyTranscript = RunTranscript | ConversationTranscript


@dataclass(frozen=True, slots=True)
class Block:
    """A titled part of the head: `facts` as label/value lines, then `texts`, each kept
    verbatim (a system prompt, a JSON setting)."""

    title: str
    facts: list[tuple[str, str]]
    texts: list[tuple[str, str]]
    # What it is, for a renderer that lays parts out differently ("participant",
    # "edits", "moderation"; "" for settings), and a participant's name.
    kind: str = ""
    name: str = ""
    head: tuple[str, str] = ("Setting", "Value")  # the facts' column names, in a table


def when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "—"


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def title(transcript: AnyTranscript) -> str:
    if isinstance(transcript, RunTranscript):
        return " ".join(transcript.topic.split()) or "Untitled run"
    return " ".join((transcript.title or "").split()) or "Untitled conversation"


def money(usd: float) -> str:
    """US dollars as people read them: cents from a cent up (`$1.25`), two significant
    digits below (`$0.0012`, `$0.000007`), and "free" for a cost of exactly 0 (the local
    and scripted models' price, or a price table's zero entry)."""
    if usd == 0:
        return "free"
    if abs(usd) >= 0.01:
        return f"${usd:,.2f}"
    decimals = min(8, 1 - math.floor(math.log10(abs(usd))))
    return f"${usd:.{decimals}f}".rstrip("0")


def totals(transcript: AnyTranscript) -> str:
    """Tokens and cost of all the messages, marked when any figure was estimated."""
    entries = [e for e in transcript.messages if e.usage is not None]
    prompt = sum(e.usage.prompt_tokens for e in entries if e.usage)
    completion = sum(e.usage.completion_tokens for e in entries if e.usage)
    costs = [e.cost_usd for e in transcript.messages if e.cost_usd is not None]
    estimated = any(e.usage.estimated for e in entries if e.usage)
    text = f"{prompt} prompt + {completion} completion tokens"
    if costs:
        text += f", {money(sum(costs))}"
    return text + (" (partly estimated)" if estimated else "")


def _run_facts(run: RunTranscript) -> list[tuple[str, str]]:
    ended: str = run.status
    if run.ended_by:
        ended += f", ended by {run.ended_by}"
    if run.stop_reason:
        ended += f" ({run.stop_reason})"
    facts = [
        ("Run", run.id),
        ("Status", ended),
        ("Policy", run.policy),
        ("Turns", f"{run.turn_count} of at most {run.max_turns}"),
        ("Started", when(run.started_at or run.created_at)),
        ("Finished", when(run.finished_at)),
        ("Usage", totals(run)),
    ]
    if run.error_message:
        facts.append(("Error", run.error_message))
    if run.parent_id:
        facts.append(("Branched from", f"{run.parent_id} at turn {run.branch_turn}"))
    facts += [("Branch", f"{b.id} at turn {b.branch_turn}") for b in run.branches]
    return facts


def _run_blocks(run: RunTranscript) -> Iterator[Block]:
    settings: list[tuple[str, str]] = [("Policy settings", as_json(run.policy_config))]
    if run.termination:
        settings.append(("Termination", as_json(run.termination)))
    yield Block("Settings", [("On a person's timeout", run.on_human_timeout)], settings)
    started = run.start_bots is not None
    for index, bot in enumerate(run.start_bots if run.start_bots is not None else run.bots):
        yield _participant(index, bot, started, bool(run.edits))
    if run.edits:
        yield _edits(run)
    if run.moderation is not None:
        yield _moderation(run.moderation)


def _participant(index: int, bot: Participant, started: bool, edited: bool) -> Block:
    """A bot's settings as the run started; for a run stored before those were kept, as it
    ended, and said so when edits changed them on the way."""
    facts = [("Kind", bot.kind), ("Model", bot.model or "—")]
    if bot.kind == "bot":
        facts += [("Temperature", str(bot.temperature)), ("Max tokens", str(bot.max_tokens))]
    if bot.fallbacks:
        facts.append(("Fallbacks", ", ".join(bot.fallbacks)))
    if bot.description:
        facts.append(("Description", bot.description))
    if edited:
        facts.append(
            ("Settings", "as the run started (changed later: see below)")
            if started
            else ("Settings", "as the run ended (its start was not recorded)")
        )
    texts = [("System prompt", bot.system_prompt)] if bot.system_prompt else []
    return Block(f"Participant {index + 1}: {bot.name}", facts, texts, "participant", bot.name)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _edits(run: RunTranscript) -> Block:
    """Every change after the start, in order: each setting from what it was to what it
    became (when the start is known), a new system prompt kept verbatim below."""
    settings = [bot.model_dump() for bot in run.start_bots] if run.start_bots else None
    facts: list[tuple[str, str]] = []
    texts: list[tuple[str, str]] = []
    for edit in run.edits:
        label = f"From turn {edit.turn + 1}" if edit.turn is not None else "After the last turn"
        name = edit.bot_name or f"bot {edit.bot}"
        before = settings[edit.bot] if settings and 0 <= edit.bot < len(settings) else None
        changed = []
        for key, value in edit.changes.items():
            setting = key.replace("_", " ")
            if key == "system_prompt":
                changed.append("system prompt (below)")
                texts.append((f"{name}'s system prompt, {label.lower()}", _shown(value)))
            elif before is not None and key in before:
                changed.append(f"{setting} {_shown(before[key])} → {_shown(value)}")
            else:
                changed.append(f"{setting} {_shown(value)}")
            if before is not None:
                before[key] = value
        said = ", ".join(changed) or "nothing changed"
        facts.append((label, f"{name}: {said} (at {when(edit.at)})"))
    return Block("Changes during the run", facts, texts, "edits", head=("From", "Change"))


_METHODS = {
    "vote": "the bots' answers, counted",
    "judge": "a judge model read the debate",
    "moderator": "the moderator decided",
}


def verdict(transcript: AnyTranscript) -> Block | None:
    """How the run ended in words (method, answer, winner, votes, reason), for the top of
    the document; a verdict of another shape (an imported one) is shown as its JSON."""
    if not isinstance(transcript, RunTranscript) or transcript.verdict is None:
        return None
    data = dict(transcript.verdict)
    facts: list[tuple[str, str]] = []
    method = data.get("method")
    if isinstance(method, str):
        data.pop("method")
        explained = _METHODS.get(method)
        facts.append(("Method", f"{method} ({explained})" if explained else method))
    for key, label in (("answer", "Answer"), ("winner", "Winner"), ("reason", "Reason")):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            facts.append((label, data.pop(key)))
    votes = data.get("votes")
    if isinstance(votes, dict) and votes:
        data.pop("votes")
        ranked = sorted(votes.items(), key=lambda item: (-_count(item[1]), item[0]))
        facts.append(("Votes", "; ".join(f"{answer}: {count}" for answer, count in ranked)))
    # What is left and says something (an imported verdict's own fields) is kept as JSON.
    rest = {key: value for key, value in data.items() if value not in (None, "", {}, [])}
    return Block("Verdict", facts, [("Other fields", as_json(rest))] if rest else [])


def _count(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _moderation(moderation: Any) -> Block:
    """A moderated debate's assessment after each round, one line per round."""
    if not isinstance(moderation, list) or not all(isinstance(m, dict) for m in moderation):
        return Block("Moderation", [], [("Assessments", as_json(moderation))], "moderation")
    facts = []
    for number, item in enumerate(moderation, start=1):
        round_number = item.get("round")
        label = f"Round {round_number + 1}" if isinstance(round_number, int) else f"#{number}"
        said = "decided" if item.get("decided") else "not decided"
        if item.get("winner"):
            said += f", winner {item['winner']}"
        if item.get("reason"):
            said += f": {item['reason']}"
        facts.append((label, said))
    return Block("Moderation", facts, [], "moderation")


def _conversation_blocks(conversation: ConversationTranscript) -> Iterator[Block]:
    facts = [("Default model", conversation.default_model)]
    texts = []
    if conversation.system_prompt:
        texts.append(("System prompt", conversation.system_prompt))
    if conversation.tools:
        texts.append(("Tools", as_json(conversation.tools)))
    yield Block("Settings", facts, texts)
    if conversation.panel is not None:
        panel = conversation.panel
        facts = [("Supervisor", conversation.default_model), ("Fallback", panel.fallback)]
        facts += [(a.name, f"{a.model}: {a.description}") for a in panel.agents]
        texts = [(f"{a.name} system prompt", a.system_prompt) for a in panel.agents]
        if panel.prompt:
            texts.insert(0, ("Routing prompt", panel.prompt))
        yield Block("Panel", facts, [t for t in texts if t[1]])


def head(transcript: AnyTranscript) -> tuple[list[tuple[str, str]], list[Block]]:
    """The facts under the title, and the blocks that follow them."""
    if isinstance(transcript, RunTranscript):
        return _run_facts(transcript), list(_run_blocks(transcript))
    facts = [
        ("Conversation", transcript.id),
        ("Messages", str(len(transcript.messages))),
        ("Started", when(transcript.started_at or transcript.created_at)),
        ("Last message", when(transcript.finished_at)),
        ("Usage", totals(transcript)),
    ]
    return facts, list(_conversation_blocks(transcript))


def heading(number: int, entry: Entry) -> str:
    """A message's heading: a bot's turn by its number, anything else by its place."""
    if entry.bot_index is not None and entry.turn is not None:
        return f"Turn {entry.turn + 1} · {entry.author}"
    return f"Message {number} · {entry.author}"


def meta(entry: Entry) -> str:
    """A message's details: role, model, status, round, tokens, cost, time, routing."""
    parts: list[str] = [entry.role]
    if entry.model:
        parts.append(entry.model)
    parts.append(entry.status)
    if entry.round is not None:
        parts.append(f"round {entry.round + 1}")
    if entry.usage is not None:
        usage = entry.usage
        tokens = f"{usage.prompt_tokens} + {usage.completion_tokens} tokens"
        parts.append(tokens + (" (estimated)" if usage.estimated else ""))
    if entry.cost_usd is not None:
        parts.append(money(entry.cost_usd))
    parts.append(when(entry.created_at))
    if entry.routing:
        reason = entry.routing.get("reason")
        routed = f"routed to {entry.routing.get('agent')}"
        parts.append(routed + (f": {reason}" if reason else ""))
    if entry.tool_call_id:
        parts.append(f"result of {entry.tool_call_id}")
    return " · ".join(parts)


def tool_calls(entry: Entry) -> list[str]:
    """The calls a message asked for, one line each."""
    calls = entry.tool_calls or []
    return [f"{c.get('name')}({c.get('arguments', '')}) [{c.get('id')}]" for c in calls]


# How much of a tool's result an export shows (the transcript's JSON keeps it whole).
TOOL_RESULT_SHOWN = 2000


def tool_steps(entry: Entry) -> list[tuple[str, str]]:
    """The MCP tool calls the turn ran, each as (its line, its result as shown)."""
    steps: list[tuple[str, str]] = []
    for step in entry.tool_steps or ():
        line = f"{step.server}.{step.tool}({step.arguments}) [{step.id}]"
        if step.approval:
            line += f" {step.approval}"
        line += f" · {'error' if step.is_error else 'result'} in {step.duration_ms:.0f} ms"
        shown = step.content[:TOOL_RESULT_SHOWN]
        if len(step.content) > TOOL_RESULT_SHOWN:
            shown += f"\n[{len(step.content) - TOOL_RESULT_SHOWN} more characters]"
        steps.append((line, shown))
    return steps

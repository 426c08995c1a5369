"""Termination conditions: when a run ends, and which condition ended it.

A run's `termination` is one condition or a combination, stored with the run as JSON:

    {"max_turns": 6}            turns taken (the run's own `max_turns` always applies too)
    {"max_rounds": 3}           rounds completed (policies with rounds)
    {"mention": "TERMINATE"}    the last turn's text contains it (case-insensitive)
    {"max_tokens": 20000}       prompt and completion tokens used by the run so far
    {"max_cost_usd": 0.50}      cost so far, plus what the next turn may cost at most
    {"timeout_seconds": 600}    wall-clock time since the run started
    {"moderator": true}         the moderator (policy `moderated`) decided the debate
    {"any": [c, ...]}           any of them; {"all": [c, ...]}: all of them at once

`met` returns the name of what ended the run (`max_turns`; for `all`, the names joined
with `+`), checked before every step of the run loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from symposia.domain.models import Run
from symposia.errors import InvalidInputError

MAX_DEPTH = 4
MAX_CONDITIONS = 16

# name -> (the type its value must have, the check)
_Check = Callable[[Any, Run, datetime, float], bool]


def _turns(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    return run.turn_count >= int(value)


def _rounds(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    return int(run.policy_state.get("rounds_done", 0)) >= int(value)


def _mention(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    turns = [m for m in run.messages if m.bot_index is not None or m.role == "user"]
    return bool(turns) and str(value).casefold() in turns[-1].content.casefold()


def _tokens(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    used = sum(m.usage.prompt_tokens + m.usage.completion_tokens for m in run.messages if m.usage)
    return used >= int(value)


def run_cost(run: Run) -> float:
    return sum(m.cost_usd or 0.0 for m in run.messages)


def _cost(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    return run_cost(run) + next_cost > float(value)


def _timeout(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    started = run.started_at or run.created_at
    return (now - started).total_seconds() >= float(value)


def _moderator(value: Any, run: Run, now: datetime, next_cost: float) -> bool:
    return bool(value) and bool(run.policy_state.get("decided"))


CONDITIONS: dict[str, tuple[type | tuple[type, ...], _Check]] = {
    "max_turns": (int, _turns),
    "max_rounds": (int, _rounds),
    "mention": (str, _mention),
    "max_tokens": (int, _tokens),
    "max_cost_usd": ((int, float), _cost),
    "timeout_seconds": ((int, float), _timeout),
    "moderator": (bool, _moderator),
}


def validate(condition: Any, field: str = "termination", depth: int = 0) -> dict[str, Any]:
    """The condition as stored, or a 422 naming what is wrong and where."""
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"conditions nest at most {MAX_DEPTH} deep", field)
    if not isinstance(condition, dict) or len(condition) != 1:
        raise InvalidInputError(
            f"a condition is an object with one key: {', '.join([*CONDITIONS, 'any', 'all'])}",
            field,
        )
    ((name, value),) = condition.items()
    if name in ("any", "all"):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_CONDITIONS:
            raise InvalidInputError(
                f"{name} takes a list of 1 to {MAX_CONDITIONS} conditions", f"{field}.{name}"
            )
        return {
            name: [validate(item, f"{field}.{name}.{i}", depth + 1) for i, item in enumerate(value)]
        }
    if name not in CONDITIONS:
        raise InvalidInputError(
            f"unknown condition {name!r}; known: {', '.join([*CONDITIONS, 'any', 'all'])}", field
        )
    kind, _ = CONDITIONS[name]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise InvalidInputError(f"{name} takes a {_kind_name(kind)}", f"{field}.{name}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
        raise InvalidInputError(f"{name} must be above 0", f"{field}.{name}")
    if isinstance(value, str) and not value.strip():
        raise InvalidInputError(f"{name} must not be empty", f"{field}.{name}")
    return {name: value}


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "whole number", float: "number", str: "string", bool: "boolean"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def uses(condition: dict[str, Any] | None, name: str) -> bool:
    """Whether `condition` has a condition called `name`, at any depth."""
    if not condition:
        return False
    ((key, value),) = condition.items()
    if key in ("any", "all"):
        return any(uses(item, name) for item in value)
    return key == name


def met(
    condition: dict[str, Any] | None, run: Run, now: datetime, next_cost: float = 0.0
) -> str | None:
    """The name of what ends the run now, if anything does: the run's `max_turns` first,
    then `condition`. `next_cost` is the most the next turn may cost (for budgets)."""
    if run.turn_count >= run.max_turns:
        return "max_turns"
    return _met(condition, run, now, next_cost) if condition else None


def _met(condition: dict[str, Any], run: Run, now: datetime, next_cost: float) -> str | None:
    ((name, value),) = condition.items()
    if name == "any":
        for item in value:
            found = _met(item, run, now, next_cost)
            if found:
                return found
        return None
    if name == "all":
        names = [_met(item, run, now, next_cost) for item in value]
        return "+".join(n for n in names if n) if all(names) else None
    return name if CONDITIONS[name][1](value, run, now, next_cost) else None

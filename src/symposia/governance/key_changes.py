"""What an admin may set on a key, checked once for the command line and the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from symposia.errors import InvalidInputError
from symposia.governance.limits import PERIODS, parse_expires, to_nanos

FIELDS = (
    "max_budget_usd",
    "budget_period",
    "models",
    "rpm",
    "tpm",
    "max_parallel",
    "expires_at",
    "metadata",
    "admin",
)
MAX_MODELS = 100
MAX_BUDGET_USD = 1e9  # nano-dollars of this fit a 64-bit integer many times over
MAX_LIMIT = 1_000_000_000  # a 32-bit column holds it


def _positive(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInputError(f"{name} must be a whole number from 1 to {MAX_LIMIT}", name)
    return value


def changes_of(given: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`given` (field -> value; None clears a limit) as `KeyLimitStore.set` takes it."""
    changes: dict[str, Any] = {}
    for name, value in given.items():
        if name not in FIELDS:
            raise InvalidInputError(f"unknown key field {name!r}", name)
        if name == "max_budget_usd":
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= MAX_BUDGET_USD
            ):
                raise InvalidInputError(
                    f"max_budget_usd must be a number from 0 to {MAX_BUDGET_USD:g}", name
                )
            changes["max_budget_nanos"] = None if value is None else to_nanos(float(value))
        elif name == "budget_period":
            if value is not None and value not in PERIODS:
                raise InvalidInputError(f"budget_period is one of {', '.join(PERIODS)}", name)
            changes[name] = value
        elif name == "models":
            if value is not None and (
                not isinstance(value, list)
                or not 1 <= len(value) <= MAX_MODELS
                or not all(isinstance(v, str) and v.strip() for v in value)
            ):
                raise InvalidInputError(
                    f"models is a list of 1 to {MAX_MODELS} names or patterns (openai/*)", name
                )
            changes[name] = value
        elif name in ("rpm", "tpm", "max_parallel"):
            changes[name] = _positive(name, value)
        elif name == "expires_at":
            changes[name] = None if value is None else parse_expires(str(value), now)
        elif name == "metadata":
            if value is not None and not isinstance(value, dict):
                raise InvalidInputError("metadata is a JSON object", name)
            changes[name] = value
        else:
            changes[name] = bool(value)
    return changes

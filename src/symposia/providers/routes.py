"""The models file (MODELS_FILE): public model names an operator gives this server.

Each entry maps a public name to a `provider/model` target, with optional default
parameters (applied when a request leaves them unset), a price (US dollars per million
tokens, as PRICES_FILE) and fallbacks (other names tried in order when the target fails
with a retryable error before its first token). YAML or JSON; an entry may be the bare
target string:

    gpt-3.5-turbo: openai/gpt-4o-mini
    fast:
      model: anthropic/claude-haiku-4-5
      defaults: {temperature: 0.2, max_tokens: 512}
      price: {input: 1.0, output: 5.0}
      fallbacks: [openai/gpt-4o-mini]

A bad file is a ValueError naming it and the entry: the settings check it at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symposia.providers.pricing import Price

# The request parameters a route may give a default for (CompletionRequest's fields).
DEFAULTABLE = frozenset({"temperature", "max_tokens", "top_p", "seed"})


@dataclass(frozen=True, slots=True)
class Route:
    """One public model name and what it stands for."""

    name: str
    target: str
    defaults: Mapping[str, Any]
    price: Price | None = None
    fallbacks: tuple[str, ...] = ()


def load_routes(path: str | None) -> dict[str, Route]:
    """The routes of the models file at `path` (none without one)."""
    if not path:
        return {}
    source = f"MODELS_FILE {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{source}: {exc.strerror or exc}") from None
    data = _parse(text, path, source)
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        data = data["models"]  # `models:` at the top is allowed, and nothing beside it
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of public name -> model")
    routes = {str(name): _route(str(name), entry, source) for name, entry in data.items()}
    for route in routes.values():
        if route.target in routes:
            raise ValueError(
                f"{source}: {route.name!r} targets {route.target!r}, itself a public name; "
                "name a provider/model"
            )
    return routes


def _parse(text: str, path: str, source: str) -> Any:
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc})") from None
    import yaml  # JSON is YAML too: any other suffix is read as YAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML ({exc})") from None


def _route(name: str, entry: object, source: str) -> Route:
    where = f"{source}: {name!r}"
    if not name or name.startswith("/"):
        raise ValueError(f"{where}: a public name may not be empty or start with /")
    if isinstance(entry, str):
        entry = {"model": entry}
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: give a model string or a mapping with `model`")
    unknown = set(entry) - {"model", "defaults", "price", "fallbacks"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    target = entry.get("model")
    if not isinstance(target, str) or "/" not in target.strip("/"):
        raise ValueError(f"{where}: `model` must be a provider/model, like openai/gpt-4o-mini")
    defaults = entry.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - DEFAULTABLE:
        raise ValueError(f"{where}: `defaults` may set {sorted(DEFAULTABLE)}")
    for key, value in defaults.items():
        kind = int if key in ("max_tokens", "seed") else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{where}: default {key} must be a number")
    fallbacks = entry.get("fallbacks") or []
    if not isinstance(fallbacks, list) or not all(isinstance(f, str) and f for f in fallbacks):
        raise ValueError(f"{where}: `fallbacks` must be a list of model names")
    return Route(name, target, dict(defaults), _price(entry.get("price"), where), tuple(fallbacks))


def _price(value: object, where: str) -> Price | None:
    if value is None:
        return None
    problem = ValueError(
        f"{where}: `price` needs numbers `input` and `output` (dollars per million tokens)"
    )
    if not isinstance(value, dict) or set(value) != {"input", "output"}:
        raise problem
    try:
        return Price(float(value["input"]), float(value["output"]))
    except (TypeError, ValueError):
        raise problem from None


def defaulted(route: Route | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """The route's defaults for the parameters `values` leaves unset (None)."""
    if route is None:
        return {}
    return {key: v for key, v in route.defaults.items() if values.get(key) is None}

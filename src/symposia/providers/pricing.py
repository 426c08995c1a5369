"""What model calls cost: a price table, a turn's cost, and the most the next turn may cost.

The table (`prices.json`, shipped with the package) gives US dollars per million input and
output tokens; a model matches its longest prefix there (`anthropic/claude-sonnet-4` prices
`anthropic/claude-sonnet-4-20250514`). An operator adds or overrides entries with a JSON file
of the same shape (PRICES_FILE). Models of the `local` and `scripted` providers cost nothing
unless an entry says otherwise. A name of the models file (MODELS_FILE) costs its
entry's `price`, else its target's; a bare name (`gpt-4o`) costs what the provider it
resolves to charges for it (`openai/gpt-4o`).
A model with no price has no cost (None): a run with a cost budget refuses such a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from symposia.domain.models import Run, TurnUsage

FREE_PROVIDERS = frozenset({"local", "scripted"})
CHARS_PER_TOKEN = 4  # the same rough rule as the usage estimate


@dataclass(frozen=True, slots=True)
class Price:
    input: float  # US dollars per million tokens
    output: float

    def of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


FREE = Price(0.0, 0.0)


# A model name -> the `provider/model` it stands for, and its own price if it has one
# (`ProviderRegistry.price_key`).
PriceKey = Callable[[str], "tuple[str, Price | None]"]


class PriceTable:
    def __init__(self, prices: dict[str, Price], key: PriceKey | None = None) -> None:
        # Longest prefix first, so the most specific entry wins.
        self._prices = dict(sorted(prices.items(), key=lambda item: -len(item[0])))
        self.key = key

    def price(self, model: str) -> Price | None:
        if self.key is not None:
            model, own = self.key(model)
            if own is not None:
                return own
        return self._listed(model)

    @classmethod
    def load(cls, extra_file: str | None = None, key: PriceKey | None = None) -> PriceTable:
        """The shipped table, with `extra_file`'s entries over it (a bad file is a
        ValueError naming it: the settings check it at start-up)."""
        shipped = resources.files("symposia.providers").joinpath("prices.json").read_text()
        prices = _parse(json.loads(shipped), "prices.json")
        if extra_file:
            try:
                data = json.loads(Path(extra_file).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"PRICES_FILE {extra_file}: {exc}") from None
            prices.update(_parse(data, f"PRICES_FILE {extra_file}"))
        return cls(prices, key)

    def _listed(self, model: str) -> Price | None:
        for prefix, price in self._prices.items():
            if model.startswith(prefix):
                return price
        return FREE if model.partition("/")[0] in FREE_PROVIDERS else None

    def cost(self, model: str | None, usage: TurnUsage | None) -> float | None:
        """A turn's cost in US dollars (an estimate when its usage is); None if unknown."""
        price = self.price(model) if model else None
        if price is None or usage is None:
            return None
        return round(price.of(usage.prompt_tokens, usage.completion_tokens), 8)

    def next_turn_at_most(self, run: Run) -> float:
        """The most the run's next turn may cost: any of its bots speaking, with all the
        transcript as its prompt and all its `max_tokens` as its answer."""
        chars = len(run.topic) + sum(len(m.content) for m in run.messages)
        most = 0.0
        for bot in run.bots:
            price = self.price(bot.model)
            if bot.kind == "human" or price is None:
                continue
            most = max(most, call_at_most(price, chars + len(bot.system_prompt), bot.max_tokens))
        return most


def prompt_tokens_at_most(prompt_chars: int) -> int:
    """The prompt's tokens as a budget counts them: the usage estimate's rule, plus one."""
    return prompt_chars // CHARS_PER_TOKEN + 1


def call_at_most(price: Price, prompt_chars: int, max_tokens: int) -> float:
    """The most one call may cost: all its prompt, and all its `max_tokens` answered
    (what a run's cost budget and a key's budget reserve)."""
    return price.of(prompt_tokens_at_most(prompt_chars), max_tokens)


def _parse(data: object, source: str) -> dict[str, Price]:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected an object of model -> {{input, output}}")
    prices: dict[str, Price] = {}
    for model, entry in data.items():
        if model.startswith("_"):
            continue  # a comment
        try:
            prices[model] = Price(float(entry["input"]), float(entry["output"]))
        except (TypeError, KeyError, ValueError):
            raise ValueError(
                f"{source}: {model!r} needs numbers `input` and `output` (dollars per "
                "million tokens)"
            ) from None
    return prices

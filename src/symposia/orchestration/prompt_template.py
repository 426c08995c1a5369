"""A prompt with named placeholders, filled as plain text: `{name}` for a known name,
`{{` and `}}` for literal braces. Nothing else is interpreted.

Not `str.format`, which a client's prompt must never reach: a format spec
(`{names:>50000000}`) builds a string of any size, and attribute or index access
(`{question.__class__}`) reaches into objects. `problems` says what a prompt holds that
is not one of these (refused when the prompt is set); `fill` leaves such text as it is,
so a prompt stored before it was checked still renders, harmlessly.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

# A template a client writes (a policy's prompt); and the most a filled one may hold, so
# that a placeholder written thousands of times cannot build a prompt of any size.
TEMPLATE_MAX = 20_000
FILLED_MAX = 64_000
# `{{`, `}}`, a `{...}` with no brace inside, or a lone brace: each token once, in order.
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")


def problems(template: str, names: Collection[str]) -> list[str]:
    """The pieces of `template` that are neither a `{name}` of `names` nor a doubled brace
    (at most a few, cut short): an empty list when it is a valid template."""
    found = []
    for match in _TOKEN.finditer(template):
        token = match.group()
        if token in ("{{", "}}") or token[1:-1] in names:
            continue
        found.append(token if len(token) <= 40 else token[:37] + "...")
        if len(found) == 3:
            break
    return found


def invalid(template: object, names: Collection[str], required: str) -> str | None:
    """Why `template` cannot be a prompt filling `names` and holding `{required}` (too
    long, other braces), or None when it can."""
    listed = ", ".join("{" + name + "}" for name in names)
    if not isinstance(template, str):
        return f"must be a string containing {{{required}}}"
    if len(template) > TEMPLATE_MAX:
        return f"is {len(template)} characters; the limit is {TEMPLATE_MAX}"
    wrong = problems(template, names)
    if wrong:
        return f"can use only {listed} (and {{{{, }}}} for a brace), not {', '.join(wrong)}"
    if count(template, required) == 0:
        return f"must contain {{{required}}}"
    return None


def count(template: str, name: str) -> int:
    """How many times `{name}` is filled in."""
    return sum(match.group() == "{" + name + "}" for match in _TOKEN.finditer(template))


def fill(template: str, values: Mapping[str, str], limit: int = FILLED_MAX) -> str:
    """`template` with each `{name}` of `values` replaced by its value, as is, and doubled
    braces made single; everything else is left as written. At most `limit` characters."""

    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token in ("{{", "}}"):
            return token[0]
        value = values.get(token[1:-1]) if len(token) > 2 else None
        return token if value is None else value

    return _TOKEN.sub(replace, template)[:limit]

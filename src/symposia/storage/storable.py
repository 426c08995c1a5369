"""Text as both databases can hold it: the one place that cleans what a column receives.

PostgreSQL's `text` cannot hold U+0000, and no UTF-8 database can hold an unpaired
surrogate (a JSON `"\\ud800"` decodes to one). Rather than fail the write, and lose a
turn, every string bound for a text or JSON column has each such character replaced by
U+FFFD, on SQLite too, so both backends store the same thing. The column types below do
it for every statement (inserts, updates, and the comparisons of a lookup, so an id
holding a NUL is simply not found), whichever repository method writes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from sqlalchemy import JSON, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from symposia.json_bounds import clipped

REPLACEMENT = "\ufffd"
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with U+0000 and unpaired surrogates replaced by U+FFFD."""
    return UNSTORABLE.sub(REPLACEMENT, text) if UNSTORABLE.search(text) else text


def unstorable(text: str) -> bool:
    """Whether `text` holds a character storage would replace (for validating input)."""
    return UNSTORABLE.search(text) is not None


def storable_json(value: Any) -> Any:
    """`value` with every string in it, keys included, made storable.

    Nearly every value has nothing to replace, and orjson tells so in one call: it
    refuses an unpaired surrogate and writes U+0000 as `\\u0000`. Only a value it
    refuses or that holds that escape (or text that looks like it) is walked: a stored
    Response holds about a hundred strings, a function call each."""
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return value
    except TypeError:  # orjson.JSONEncodeError: a surrogate, or a type it cannot write
        pass
    return _storable_walk(value)


def _storable_walk(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {_storable_walk(k): _storable_walk(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_walk(item) for item in value]
    return value


class StorableString(TypeDecorator[str]):
    """`String(n)` whose values are made storable on the way in."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return storable(value) if isinstance(value, str) else value


class StorableText(StorableString):
    """`Text` whose values are made storable on the way in."""

    impl = Text
    cache_ok = True


class StorableJSON(TypeDecorator[Any]):
    """`JSON` whose strings are made storable on the way in, and whose documents are read
    `clipped` to MAX_JSON_DEPTH: one stored before bodies were bounded still serializes."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable_json(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return clipped(value)

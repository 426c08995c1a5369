"""How deep and how large a JSON document a client may send, and what reading one stored
before that bound was checked gives.

A document nested a few hundred levels deep is small (2.5 KB for 254 levels) but breaks
whatever walks it recursively later: pydantic's serializer stops at 255 levels, so a
stored `policy_config` or tool schema made every listing holding it answer 500. Every
JSON body (HTTP and WebSocket) is measured once at the edge (`excess`), and every JSON
column read from storage is `clipped`, so a row stored before still reads.
"""

from __future__ import annotations

from typing import Any

# Far beyond any real document (OpenAI's structured outputs allow 10 levels of schema
# nesting, about 30 of JSON), far below the 255 where serializers give up.
MAX_JSON_DEPTH = 64
# Values (containers, keys' values, items) in one body: far more than any request
# needs, a bound on what one stored document costs every reader of it.
MAX_JSON_VALUES = 100_000
CLIPPED = f"(nested deeper than {MAX_JSON_DEPTH} levels; not kept)"
_CONTAINERS = (dict, list)  # what JSON parses to: exact types, tested with `type(...) in`


def _container(value: Any) -> bool:
    return isinstance(value, _CONTAINERS)


def _over(value: Any) -> bool:
    """Whether `value` is over either bound: one pass, no paths kept (the common case)."""
    stack = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_JSON_DEPTH:
            return True
        seen += len(item)
        if seen > MAX_JSON_VALUES:
            return True
        below = depth + 1
        children = item.values() if type(item) is dict else item
        stack.extend([(child, below) for child in children if type(child) in _CONTAINERS])
    return False


def _deepest(value: Any) -> tuple[str | int, ...] | None:
    """The path of a container nested MAX_JSON_DEPTH deep (recursion bounded by it)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) >= MAX_JSON_DEPTH:
            return path
        children = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend((child, (*path, key)) for key, child in children if _container(child))
    return None


def _count(value: Any) -> int:
    """Values in `value`, itself included."""
    total, stack = 1, [value]
    while stack:
        item = stack.pop()
        total += len(item)
        children = item.values() if isinstance(item, dict) else item
        stack.extend(child for child in children if _container(child))
    return total


def excess(value: Any) -> tuple[str, tuple[str | int, ...]] | None:
    """What is over the bounds in `value` (nested deeper than MAX_JSON_DEPTH, or more
    than MAX_JSON_VALUES values) and where: the path of the container found too deep, or
    of the top-level field holding the most. None when within them. No recursion."""
    if not _container(value) or not _over(value):
        return None
    path = _deepest(value)
    if path is not None:
        return f"is nested deeper than {MAX_JSON_DEPTH} levels", path
    fields = value.items() if isinstance(value, dict) else enumerate(value)
    sizes = [(_count(child) if _container(child) else 1, key) for key, child in fields]
    return f"holds more than {MAX_JSON_VALUES} values", (max(sizes)[1],)


def field_of(path: tuple[str | int, ...], keep: int = 4) -> str:
    """The field a path names, as the API names fields (`tools.0.function.parameters`):
    its first `keep` parts, enough to find it; `body` for the body itself."""
    return ".".join(str(part) for part in path[:keep]) or "body"


def _too_deep(value: Any, depth: int) -> bool:
    if depth >= MAX_JSON_DEPTH:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(_too_deep(child, depth + 1) for child in children if _container(child))


def _clip(value: Any, depth: int) -> Any:
    if depth >= MAX_JSON_DEPTH:
        return CLIPPED
    if isinstance(value, dict):
        return {k: _clip(v, depth + 1) if _container(v) else v for k, v in value.items()}
    return [_clip(v, depth + 1) if _container(v) else v for v in value]


def clipped(value: Any) -> Any:
    """`value` as stored, with each container nested deeper than MAX_JSON_DEPTH replaced by
    the text CLIPPED: a document accepted before depth was bounded still serializes.
    Recursion is bounded by MAX_JSON_DEPTH; the common case copies nothing."""
    if not _container(value) or not _too_deep(value, 0):
        return value
    return _clip(value, 0)

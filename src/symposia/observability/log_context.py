"""Fields bound to every log line of a request and of the tasks it starts (its id).

One `ContextVar` of our own rather than structlog's context variables: importing structlog
loads rich and pygments for its console tracebacks (about 4 MB of an idle server's
memory), which a server writing JSON lines never uses; structlog is loaded only for
LOG_FORMAT=console. asyncio tasks copy the context they were created in, so a run started
by a request logs with its id.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_EMPTY: dict[str, Any] = {}
_fields: ContextVar[dict[str, Any]] = ContextVar("symposia_log_fields", default=_EMPTY)


def bind(**fields: Any) -> None:
    _fields.set({**_fields.get(), **fields})


def unbind(*names: str) -> None:
    current = _fields.get()
    _fields.set({key: value for key, value in current.items() if key not in names})


def bound_fields() -> dict[str, Any]:
    """The fields bound now (not to be changed: `bind` and `unbind` make new ones)."""
    return _fields.get()


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """`fields` bound inside the block, what was bound before restored after it."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def merge_bound_fields(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The structlog processor of the console pipeline: the bound fields, as structlog's
    `merge_contextvars` adds its own (a field of the event itself wins)."""
    for key, value in _fields.get().items():
        event.setdefault(key, value)
    return event

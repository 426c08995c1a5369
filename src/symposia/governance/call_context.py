"""Who a provider call is for and where it comes from, carried by a context variable.

Set where a call's purpose is known (a `/v1` request, a run's task, a reply's task);
read by the meter at the one seam every provider call passes through, so no call site
has to hand it down. A task started inside inherits it (asyncio copies the context).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class CallContext:
    """`owner` is the principal's id (`key:<id>` for an API key); `surface` is where the
    call comes from (`/v1/chat/completions`, `chat`, `run`, `run.choice`, ...)."""

    owner: str | None
    surface: str
    run_id: str | None = None
    conversation_id: str | None = None
    response_id: str | None = None

    @property
    def key_id(self) -> str | None:
        owner = self.owner or ""
        return owner[4:] if owner.startswith("key:") else None


_CURRENT: ContextVar[CallContext | None] = ContextVar("symposia_call", default=None)


def current() -> CallContext | None:
    return _CURRENT.get()


@contextlib.contextmanager
def calling(context: CallContext) -> Iterator[CallContext]:
    """Provider calls made inside the block are `context`'s."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def as_surface(surface: str) -> Iterator[None]:
    """The calls inside are the current context's, from `surface` (a choice of who
    speaks, inside a run or a reply)."""
    found = _CURRENT.get()
    if found is None:
        yield
        return
    token = _CURRENT.set(replace(found, surface=surface))
    try:
        yield
    finally:
        _CURRENT.reset(token)

"""Small asyncio helpers that more than one part needs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def complete(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end even if we are cancelled meanwhile, then pass the cancel on.

    For bookkeeping that must not be cut in half (saving a message, closing a stream):
    a bare `asyncio.shield` lets the caller move on while the work is still running,
    so what the caller does next could overtake it.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


class Watchdog:
    """Cancels a task that stays armed for longer than `limit` seconds.

    A cheaper `asyncio.timeout` for hot loops: arming and disarming are two attribute
    writes; one timer handle is re-armed lazily, only when it fires early. After a
    cancel it caused, `fired` is true, so the task can tell it from any other cancel.
    """

    __slots__ = ("_handle", "_handle_due", "_loop", "_task", "armed_at", "fired", "limit")

    def __init__(self, limit: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.limit = limit
        self.armed_at: float | None = None
        self.fired = False
        self._handle: asyncio.TimerHandle | None = None
        self._handle_due = 0.0

    def arm(self, limit: float | None = None) -> None:
        if limit is not None:
            self.limit = limit
        self.armed_at = self._loop.time()
        due = self.armed_at + self.limit
        if self._handle is None or self._handle_due > due:  # none yet, or a shorter limit
            self._schedule(due)

    def _schedule(self, due: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle_due = due
        self._handle = self._loop.call_at(due, self._check)

    def disarm(self) -> None:
        self.armed_at = None

    def _check(self) -> None:
        self._handle = None
        if self.armed_at is None:
            return
        due = self.armed_at + self.limit
        if self._loop.time() >= due:
            self.fired = True
            self._task.cancel()
        else:
            self._schedule(due)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def read_ahead(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """`chunks`, read by a task of its own; each step yields everything read since the
    last one, joined.

    A transport hands over what it holds when asked (httpx: one HTTP chunk; aiohttp: what
    its buffer has), so a relay asking once per token pays its whole chain (parse,
    encode, one socket write) per token. With the reading in a task of its own, the
    socket is drained while the relay works on the last step, and the next step takes
    all that came meanwhile; the first byte is not delayed. Closing this iterator
    cancels the reader and waits for it, so `chunks` is free to be closed next.
    """
    loop = asyncio.get_running_loop()
    pending: list[bytes] = []
    failure: list[Exception] = []
    wakeup: asyncio.Future[None] | None = None

    def wake() -> None:
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def pump() -> None:
        try:
            async for chunk in chunks:
                pending.append(chunk)
                wake()
        except Exception as exc:  # handed to the consumer, after what was read before it
            failure.append(exc)
        finally:
            wake()

    reader = asyncio.create_task(pump())
    try:
        while True:
            if not pending and not reader.done():
                wakeup = loop.create_future()
                await wakeup
            if pending:
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                yield data
            elif reader.done():
                if failure:
                    raise failure[0]
                return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def stopped_within(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`: whether it is set. A loop's sleep that ends early
    when it is told to stop, letting the work under way finish rather than cancelling it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()

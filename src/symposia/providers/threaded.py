"""Run a blocking producer in a thread and consume what it emits as an async iterator.

For libraries with blocking streaming APIs (llama-cpp-python, boto3). Items cross to the
event loop through `call_soon_threadsafe`; when the consumer leaves, `stop` is set and the
producer is expected to check it between items.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")
Producer = Callable[[Callable[[T], None], threading.Event], None]
_END = object()


async def iterate_in_thread(
    producer: Producer[T], executor: Executor | None = None
) -> AsyncIterator[T]:
    """Yield what `producer(emit, stop)` emits; its exceptions are re-raised here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def emit(item: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def run() -> None:
        try:
            if not stop.is_set():
                producer(emit, stop)
        except BaseException as exc:  # handed to the consumer, not lost in the thread
            emit(_Raised(exc))
        finally:
            emit(_END)

    # In the caller's context, as asyncio.to_thread runs: its log fields and trace span.
    future = loop.run_in_executor(executor, contextvars.copy_context().run, run)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                break
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        future.cancel()


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

"""The lifetime of one `/v1` request: it ends when its client leaves or the server stops.

A handler learns that its client left only by reading `http.disconnect` from ASGI's
`receive`, and nothing reads it while the handler awaits a model: the first token, a
retry's sleep, a whole answer that is not streamed. So each request gets one watcher
from the moment its body has been read until its response has been sent (a streamed
response closes it when it ends; the handler, when it answers otherwise); the watcher
is also what the response uses, so a streamed answer costs no second task. Code that
waits on a model runs inside `with scope:`: the client leaving, or
`RequestScopes.shutdown`, cancels it there at once, and the block ends with
`ClientGoneError` or `ShuttingDownError`.

The cancel is one `Task.cancel()` (as `asyncio.timeout` does it), never repeated, so
bookkeeping under `aio.complete` (saving a partial reply) still runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from starlette.types import Receive

from symposia.errors import ShuttingDownError


class ClientGoneError(Exception):
    """The client left: there is no one to answer."""


Ending = type[ClientGoneError] | type[ShuttingDownError]


class RequestScope:
    """One request's watcher, and the `with` block it may cancel (one at a time)."""

    __slots__ = ("_cancelled", "_cancelling", "_owner", "_task", "_watcher", "ended")

    def __init__(self, receive: Receive, owner: RequestScopes | None = None) -> None:
        # Why the request ended early (raised by `with`): None while it has not.
        self.ended: Ending | None = None
        self._task: asyncio.Task[object] | None = None  # the task inside `with`
        self._cancelling = 0
        self._cancelled = False
        self._owner = owner  # told when this scope closes
        self._watcher = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        # After the body, uvicorn answers `receive` only with `http.disconnect`: when the
        # client closes, or once the response is complete.
        while (await receive())["type"] != "http.disconnect":
            pass
        self._end(ClientGoneError)

    def shutdown(self) -> None:
        self._end(ShuttingDownError)

    def _end(self, reason: Ending) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        if self._task is not None and not self._cancelled:
            self._cancelled = True
            self._task.cancel()

    def __enter__(self) -> RequestScope:
        if self.ended is not None:
            raise self.ended()
        task = asyncio.current_task()
        assert task is not None
        assert self._task is None  # not re-entered
        self._task, self._cancelling, self._cancelled = task, task.cancelling(), False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if not self._cancelled or task is None:
            return
        self._cancelled = False
        # Ours alone, or someone else's cancel too (then it goes on as a cancel).
        if task.uncancel() <= self._cancelling and exc_type in (None, asyncio.CancelledError):
            assert self.ended is not None
            raise self.ended() from exc

    def close(self) -> None:
        """The request is over: stop watching (closing twice is harmless)."""
        self._watcher.cancel()
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.closed(self)


class RequestScopes:
    """The `/v1` requests in flight, so that shutdown ends each one with an error of its
    own (an error chunk, or a 503) instead of leaving uvicorn to cut them."""

    __slots__ = ("_closing", "_drained", "_open")

    def __init__(self) -> None:
        self._open: set[RequestScope] = set()
        self._closing = False
        self._drained: asyncio.Future[None] | None = None

    @property
    def count(self) -> int:
        return len(self._open)

    def start(self) -> None:
        """Take requests again: an ASGI server may run the lifespan more than once."""
        self._closing = False
        self._drained = None

    def open(self, receive: Receive) -> RequestScope:
        """A request's scope, from now until its `close`."""
        scope = RequestScope(receive, self)
        if self._closing:
            scope.shutdown()
        self._open.add(scope)
        return scope

    def closed(self, scope: RequestScope) -> None:
        self._open.discard(scope)
        if not self._open and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def shutdown(self, grace: float) -> None:
        """End every request in flight, and wait up to `grace` seconds for their answers
        (and the partial replies they keep) to be done."""
        self._closing = True
        if not self._open:
            return
        self._drained = asyncio.get_running_loop().create_future()
        for scope in list(self._open):
            scope.shutdown()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained, grace)

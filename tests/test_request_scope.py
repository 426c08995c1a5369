"""RequestScope's cancel semantics, without sockets: what `with scope:` turns into what."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from symposia.aio import complete
from symposia.errors import ShuttingDownError
from symposia.streaming.request_scope import ClientGoneError, RequestScope


class Client:
    """An ASGI `receive` after the body: `http.disconnect` once `leave()` is called."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.gone.set()


async def test_the_client_leaving_ends_the_block_and_bookkeeping_still_finishes() -> None:
    client, saved = Client(), []
    scope = RequestScope(client.receive)

    async def save() -> None:
        await asyncio.sleep(0.05)  # longer than the client takes to leave
        saved.append(True)

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await complete(save())

    asyncio.get_running_loop().call_later(0.01, client.leave)
    with pytest.raises(ClientGoneError), scope:
        await work()
    assert saved == [True]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    with pytest.raises(ClientGoneError), scope:  # a later block does not even start
        pytest.fail("entered a scope whose client had gone")
    scope.close()


async def test_shutdown_ends_the_block_with_its_error() -> None:
    scope = RequestScope(Client().receive)
    asyncio.get_running_loop().call_later(0.01, scope.shutdown)
    with pytest.raises(ShuttingDownError), scope:
        await asyncio.sleep(10)
    scope.close()


async def test_another_cancel_stays_a_cancel() -> None:
    client = Client()
    scope = RequestScope(client.receive)

    async def handler() -> None:
        with scope:
            await asyncio.sleep(10)

    task = asyncio.create_task(handler())
    await asyncio.sleep(0.01)
    client.leave()
    task.cancel()  # e.g. the server's own cancel, at the same moment
    await asyncio.wait([task])
    assert task.cancelled()
    scope.close()


async def test_a_block_that_ends_untouched_is_left_alone() -> None:
    client = Client()
    scope = RequestScope(client.receive)
    with scope:
        await asyncio.sleep(0)
    client.leave()
    await asyncio.sleep(0.01)  # the watcher notices; nothing is inside `with` to cancel
    await asyncio.sleep(0.01)  # so no cancel strikes here, outside the block
    assert scope.ended is ClientGoneError
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    scope.close()

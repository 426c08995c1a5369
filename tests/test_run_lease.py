"""Issue 11, point 4: run leases with a fencing epoch. A process that claims a run bumps its
`lease_epoch`; a stale owner (paused, partitioned) that wakes up after another process
claimed the run can neither append an event nor write a message nor change the status."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from symposia.container import Container
from symposia.domain.models import BotConfig, Message, Run, RunStatus
from symposia.errors import FencedOutError
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.sql_runs import SqlRunRepository
from tests.helpers import wait_for_event
from tests.test_event_log_contract import Backend, backend  # noqa: F401 (the fixture)


def _run() -> Run:
    bots = [BotConfig("A", "scripted/echo", ""), BotConfig("B", "scripted/echo", "")]
    return Run(topic="t", bots=bots, max_turns=2, owner="dev")


async def test_a_stale_owner_cannot_write_after_another_claimed_the_run(
    database_url: str,
    backend: Backend,  # noqa: F811
) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    stale, taker = SqlRunRepository(sessions, "stale"), SqlRunRepository(sessions, "taker")
    run = _run()
    await stale.add(run)
    log = await backend.log()
    other_log = await backend.peer(log)  # the new owner's process
    await log.create(run.id)
    try:
        old = await stale.claim(run.id)
        await log.fence(run.id, old)
        await stale.set_status(run.id, RunStatus.RUNNING, epoch=old)
        first = await log.append(run.id, "token", {"delta": "a"}, epoch=old)

        new = await taker.claim(run.id)
        assert (old, new) == (1, 2)
        await other_log.fence(run.id, new)
        assert await stale.heartbeat([run.id]) == 0  # the lease is not the stale owner's
        assert await taker.heartbeat([run.id]) == 1

        message = Message("assistant", "A", "stale words", bot_index=0, turn=0)
        with pytest.raises(FencedOutError):
            await log.append(run.id, "token", {"delta": "stale"}, epoch=old)
        with pytest.raises(FencedOutError):
            await stale.add_message(run.id, message, epoch=old)
        with pytest.raises(FencedOutError):
            await stale.set_status(run.id, RunStatus.COMPLETED, epoch=old)
        with pytest.raises(FencedOutError):
            await stale.set_done_event(run.id, 9, epoch=old)
        with pytest.raises(FencedOutError):
            await log.fence(run.id, old)  # nor can it take the stream back

        assert await other_log.read(run.id) == [first]
        stored = await taker.get(run.id)
        assert stored is not None
        assert stored.messages == []
        assert stored.status is RunStatus.RUNNING
        assert stored.done_event is None

        # The new owner writes as usual.
        second = await other_log.append(run.id, "token", {"delta": "b"}, epoch=new)
        assert second.seq == 2
        await taker.add_message(run.id, Message("assistant", "A", "ok", bot_index=0), epoch=new)
        await taker.set_status(run.id, RunStatus.COMPLETED, epoch=new)
        stored = await taker.get(run.id)
        assert stored is not None
        assert [m.content for m in stored.messages] == ["ok"]
        assert stored.status is RunStatus.COMPLETED
    finally:
        await engine.dispose()


async def test_a_run_task_whose_lease_was_taken_stops_writing(
    client: httpx.AsyncClient,
    container: Container,
    scripted: ScriptedProvider,
    settings: Settings,
) -> None:
    scripted.add_script("slow", Script(chunks=[f"w{i} " for i in range(40)], delay=0.02))
    bots = [{"name": "A", "model": "scripted/slow"}, {"name": "B", "model": "scripted/slow"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 2})
    run_id = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")

    engine = create_engine(settings.database_url)
    try:
        taker = SqlRunRepository(session_factory(engine), "taker")
        epoch = await taker.claim(run_id)
        await container.log.fence(run_id, epoch)
        await asyncio.sleep(0.3)  # the owner's next token append meets the fence
        last = await container.log.last_seq(run_id)
        await asyncio.sleep(0.3)
        assert await container.log.last_seq(run_id) == last  # it wrote nothing more
        events = await container.log.read(run_id)
        assert all(e.type not in ("turn_complete", "done", "error") for e in events)
        stored = await taker.get(run_id)
        assert stored is not None
        assert stored.messages == []  # not even the cut turn's partial text
        assert stored.status is RunStatus.RUNNING  # nor a status: the run is the taker's
    finally:
        await engine.dispose()

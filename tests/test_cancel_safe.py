"""A repository call cancelled half-way must not leave SQLite's write lock held.

Found by CI: `DELETE /api/run/{id}` of a live run answered 503 ("database busy") after 30 s
when the stop's cancel reached the run's task inside its lease claim; the connection was
dropped with its transaction open, and no other write could pass until the process ended.
Here the cancel lands at every step of a claim in turn, and a write from elsewhere must
then pass at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from symposia.domain.models import BotConfig, Run
from symposia.storage.cancel_safe import finish_before_cancel
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from symposia.storage.sql_runs import SqlRunRepository


def _run() -> Run:
    bots = [BotConfig("A", "scripted/echo", ""), BotConfig("B", "scripted/echo", "")]
    return Run(topic="t", bots=bots, max_turns=2, owner="dev")


async def test_a_claim_cancelled_at_any_step_leaves_the_database_writable(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await upgrade(engine)
    runs = SqlRunRepository(session_factory(engine), "owner")
    try:
        run = _run()
        await runs.add(run)
        cut_inside = 0
        for steps in range(40):
            claim = asyncio.create_task(runs.claim(run.id))
            for _ in range(steps):
                await asyncio.sleep(0)
            if not claim.done():
                cut_inside += 1
            claim.cancel()
            await asyncio.wait({claim})
            # Another write: on a held lock it would wait out the 30 s busy timeout.
            await asyncio.wait_for(runs.request_stop(run.id, "check"), timeout=5)
        assert cut_inside > 5  # the cancels did land inside the claim
    finally:
        await engine.dispose()


async def test_the_cancel_still_reaches_the_caller_after_the_call_ends() -> None:
    ended = asyncio.Event()

    async def write() -> str:
        await asyncio.sleep(0.05)
        ended.set()
        return "written"

    caller = asyncio.create_task(finish_before_cancel(write()))
    await asyncio.sleep(0.01)
    caller.cancel()
    caller.cancel()  # twice: still waits for the write
    await asyncio.wait({caller})
    assert caller.cancelled()
    assert ended.is_set()

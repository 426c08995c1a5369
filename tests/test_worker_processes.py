"""Issue 11: a run is a server resource that any worker can serve, continue and stop.

Real `symposia serve` processes on one PostgreSQL database and one Redis (the Redis Streams
event log): viewers on one worker follow runs generated on another, a stop reaches the
owner from anywhere, a killed owner's run is taken over, a rolling restart loses nothing,
and `Last-Event-ID` means the same event across a full restart and past retention.

The scripted model `scripted/count` streams "1 2 3 ..." up to `max_tokens`, one word per
SCRIPTED_TOKEN_DELAY (0.05 s): a 20-token turn lasts about a second.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from symposia.events.redis import KEY_PREFIX
from tests.fakes.databases import PostgresDatabases, pg_url
from tests.fakes.redis_server import require_redis_sync
from tests.fakes.workers import (
    Api,
    Cluster,
    Received,
    Viewer,
    gap_free,
    reassembled,
    redis_has,
    stored_turns,
    worker_env,
)

LEASE_SECONDS = 3.0  # RUN_LEASE_SECONDS of `worker_env`
TOKENS = 20
COUNTED = " ".join(str(n) for n in range(1, TOKENS + 1))  # a whole turn's text


@pytest.fixture
async def cluster(postgres: PostgresDatabases, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Workers on a fresh database of their own (they start together and migrate it, as
    `--workers` starts them) and the shared Redis; all killed at the end, whatever the
    test did to them."""
    require_redis_sync()
    made = Cluster(worker_env(pg_url(postgres.create())), tmp_path)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield Api(client)


def _keys(events: list[Received]) -> list[tuple[int, str, Any]]:
    return [e.key for e in events]


def _turn_indices(events: list[Received]) -> list[int]:
    return [e.data["turn"] for e in events if e.event == "turn_complete"]


async def test_viewers_on_other_workers_follow_a_run_token_by_token(
    cluster: Cluster, api: Api
) -> None:
    one, two, three = cluster.add(), cluster.add(), cluster.add()
    await cluster.start()
    run_id = await api.create_run(one, turns=4, max_tokens=TOKENS)
    viewers = [Viewer(cluster, run_id, worker) for worker in (two, three, one)]
    # Token by token, not a turn at a time: worker 2's viewer sees a turn's first token
    # before that turn completes.
    first = await viewers[0].wait_for(lambda e: e.event == "token")
    complete = await viewers[0].wait_for(lambda e: e.event == "turn_complete")
    assert complete.at - first.at > 0.5  # the turn's 20 tokens came over a second
    for viewer in viewers:
        await viewer.wait_done()

    events = viewers[0].events
    assert gap_free(events), [e.id for e in events]
    assert {e.worker for e in events} == {two.name}  # one connection, to worker 2
    for other in viewers[1:]:
        assert _keys(other.events) == _keys(events)
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    assert _turn_indices(events) == [0, 1, 2, 3]
    turns = reassembled(events)
    assert [t.content for t in turns.values()] == [COUNTED] * 4
    assert turns == stored_turns(await api.transcript(three, run_id))


async def test_a_stop_from_a_third_worker_ends_the_run_within_a_second(
    cluster: Cluster, api: Api
) -> None:
    one, two, three = cluster.add(), cluster.add(), cluster.add()
    await cluster.start()
    stopped_id = await api.create_run(one, turns=6, max_tokens=TOKENS)
    going_id = await api.create_run(one, turns=3, max_tokens=TOKENS)
    watching = Viewer(cluster, stopped_id, two)
    also = Viewer(cluster, stopped_id, three)
    going = Viewer(cluster, going_id, two)
    await watching.wait_for(lambda e: e.event == "token" and e.data["turn"] == 1)

    asked = time.monotonic()
    response = await api.client.post(f"{three.base_url}/api/run/{stopped_id}/stop")
    answered = time.monotonic()
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["stop_reason"] == "stopped by user"
    assert answered - asked < 2.0
    for viewer in (watching, also):
        events = await viewer.wait_done(timeout=5)
        assert events[-1].at - answered < 1.0, "the stream did not end within a second"
        assert events[-2].data == {
            "status": "cancelled",
            "reason": "stopped by user",
            "ended_by": "stop",
        }
        assert events[-1].data == {"status": "cancelled", "ended_by": "stop"}
        assert gap_free(events)
    assert _keys(also.events) == _keys(watching.events)
    assert (await api.run(one, stopped_id))["status"] == "cancelled"
    # The other run of the same owner, on the same worker, went on to its end.
    events = await going.wait_done()
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    assert gap_free(events)


async def test_a_killed_owners_run_is_taken_over_and_its_viewer_misses_nothing(
    cluster: Cluster, api: Api
) -> None:
    owner, two, _ = cluster.add(), cluster.add(), cluster.add()
    await cluster.start()
    run_id = await api.create_run(owner, turns=4, max_tokens=TOKENS)
    on_owner = Viewer(cluster, run_id, owner)
    on_two = Viewer(cluster, run_id, two)
    # Mid-turn: turn 1 has said a few words.
    await on_owner.wait_for(
        lambda e: e.event == "token" and e.data["turn"] == 1 and e.data["delta"] == " 5"
    )
    cut_at = on_owner.last_id
    owner.kill()
    killed = time.monotonic()

    events = await on_two.wait_done(timeout=30)
    assert _keys(await on_owner.wait_done(timeout=5)) == _keys(events)
    assert gap_free(events), [e.id for e in events]
    # The owner's viewer lost its connection and went on elsewhere after what it had.
    lost, *rest = on_owner.connections
    assert lost.worker == owner.name
    assert lost.ended != "done"
    assert rest[0].worker != owner.name
    assert rest[0].last_event_id >= cut_at
    assert rest[-1].ended == "done"

    kinds = [e.event for e in events]
    assert kinds.count("interrupted") == 1, kinds
    assert kinds.count("resumed") == 1, kinds
    interrupted = kinds.index("interrupted")
    cut, resumed, restart = (events[interrupted + step] for step in (-1, 1, 2))
    assert cut.event == "turn_complete"
    assert cut.data["turn"] == 1
    assert cut.data["status"] == "partial"
    assert COUNTED.startswith(cut.data["content"])
    assert len(cut.data["content"].split()) >= 5
    assert events[interrupted].data["turn"] == 2  # the turn it goes on from (docs/events.md)
    assert resumed.event == "resumed"
    assert resumed.data["turn"] == 2
    assert resumed.data["takeovers"] == 1
    assert resumed.at - killed < LEASE_SECONDS + 2, "no worker took the run over in time"
    assert restart.event == "turn_start"
    assert restart.data["turn"] == 2
    # The cut turn is never replayed: each turn starts once, and the run goes to its end.
    assert [e.data["turn"] for e in events if e.event == "turn_start"] == [0, 1, 2, 3]
    assert _turn_indices(events) == [0, 1, 2, 3]
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}

    transcript = await api.transcript(two, run_id)
    assert transcript["status"] == "completed"
    stored = stored_turns(transcript)
    assert reassembled(events) == stored
    by_turn = {turn.turn: turn for turn in stored.values()}
    assert by_turn[1].status == "partial"
    assert by_turn[1].content == cut.data["content"]
    for index in (0, 2, 3):
        assert by_turn[index].status == "complete"
        assert by_turn[index].content == COUNTED


async def test_a_rolling_restart_with_sigterm_loses_no_run(cluster: Cluster, api: Api) -> None:
    workers = [cluster.add(), cluster.add(), cluster.add()]
    await cluster.start()
    # Runs far longer than three restarts (20 turns of a second, RUN_MAX_TURNS); once the
    # restarts are done, a bot edit shortens their remaining turns, whatever the speed.
    turns = 20
    run_ids = [
        await api.create_run(workers[i % 3], turns=turns, max_tokens=TOKENS) for i in range(5)
    ]
    viewers = [Viewer(cluster, run_id, workers[(i + 1) % 3]) for i, run_id in enumerate(run_ids)]
    for viewer in viewers:
        await viewer.wait_for(lambda e: e.event == "token")

    for worker in workers:
        other = cluster.other_than(worker)
        for run_id in run_ids:  # every restart happens while all five runs are live
            assert (await api.run(other, run_id))["status"] == "running", cluster.logs()
        status = await worker.terminate()
        assert status in (0, -signal.SIGTERM), worker.log_tail()
        assert "Traceback" not in worker.log_text(), worker.log_tail()
        await cluster.start(worker)

    for i, run_id in enumerate(run_ids):  # each edit through some worker, not the owner's
        for bot in (0, 1):
            url = f"{workers[(i + bot) % 3].base_url}/api/run/{run_id}/bot/{bot}"
            edited = await api.client.patch(url, json={"max_tokens": 2})
            assert edited.status_code == 200, edited.text
    for viewer in viewers:
        events = await viewer.wait_done(timeout=40)
        assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}, cluster.logs()
        assert gap_free(events), [e.id for e in events]
        assert _turn_indices(events) == list(range(turns))
        kinds = [e.event for e in events]
        assert kinds.count("interrupted") == kinds.count("resumed")
        transcript = await api.transcript(workers[0], viewer.run_id)
        assert transcript["status"] == "completed"
        assert reassembled(events) == stored_turns(transcript)
        last = [e.data["content"] for e in events if e.event == "turn_complete"][-1]
        assert last == "1 2"  # the edit reached whichever worker owned the run by then
    # The runs created on worker 1 were its own when it got SIGTERM: handed over, not ended.
    for viewer in (viewers[0], viewers[3]):
        reasons = [e.data["reason"] for e in viewer.events if e.event == "interrupted"]
        assert any("handed over" in reason for reason in reasons), reasons


def _compacted(live: list[tuple[int, str, Any]]) -> list[tuple[int, str, Any]]:
    """A live stream as docs/events.md says it comes back once its log is gone: each
    turn's tokens become one `snapshot` with the last token's id, standing for the ids from
    the first token's (`first_id`, `ranges`) and carrying the turn's whole text; every
    other event keeps its id and data."""
    out: list[tuple[int, str, Any]] = []
    start: int | None = None
    for seq, kind, data in live:
        if kind == "turn_start":
            start = seq
        if kind == "token":
            continue
        if kind == "turn_complete" and start is not None and seq - start > 1:
            message = {
                "message_id": data["message_id"],
                "turn": data["turn"],
                "bot": data["bot"],
                "name": data["name"],
                "content": data["content"],
            }
            ids = {"first_id": start + 1, "ranges": [[start + 1, seq - 1]]}
            out.append((seq - 1, "snapshot", {**ids, "messages": [message]}))
        out.append((seq, kind, data))
    return out


async def test_last_event_id_across_a_full_restart_and_past_retention(
    cluster: Cluster, api: Api
) -> None:
    # A finished stream expires after the retention of the worker that closed it: one
    # worker keeps its streams ten minutes, the other one second, so one restart shows
    # both sides (a stream still in Redis, one rebuilt from the database).
    keeping = cluster.add({"EVENT_LOG_RETENTION_SECONDS": "600", "SCRIPTED_TOKEN_DELAY": "0.01"})
    forgetting = cluster.add({"EVENT_LOG_RETENTION_SECONDS": "1", "SCRIPTED_TOKEN_DELAY": "0.01"})
    await cluster.start()
    kept_id = await api.create_run(keeping, turns=3, max_tokens=8)
    gone_id = await api.create_run(forgetting, turns=3, max_tokens=8)
    live: dict[str, list[tuple[int, str, Any]]] = {}
    for run_id, watched_on in ((kept_id, forgetting), (gone_id, keeping)):
        received = await Viewer(cluster, run_id, watched_on).wait_done()
        assert gap_free(received)
        live[run_id] = _keys(received)

    for worker in cluster.workers:  # all of them stopped, then all started again
        assert await worker.terminate() in (0, -signal.SIGTERM), worker.log_tail()
    await cluster.start()
    assert redis_has(f"{KEY_PREFIX}{{{kept_id}}}")
    for _ in range(50):  # past the retention; it began when the stream closed
        if not redis_has(f"{KEY_PREFIX}{{{gone_id}}}"):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the one-second stream never expired")

    expected = {kept_id: live[kept_id], gone_id: _compacted(live[gone_id])}
    assert any(kind == "snapshot" for _, kind, _ in expected[gone_id])
    for run_id, stream in expected.items():
        for worker in cluster.workers:
            for after in range(len(live[run_id]) + 1):
                got = await api.replay(worker, run_id, after)
                want = [event for event in stream if event[0] > after]
                assert got == want, (run_id == kept_id, worker.name, after)

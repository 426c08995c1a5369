"""An event id means one event, forever: a stream read after a restart or past the live
log's retention numbers its events as the live one did (issue 11, point 1).

What storage still has comes back with its own id; the tokens of a turn, and what left no
trace (a turn that said nothing), come back as one `snapshot` numbered with the last id
it stands for. A client that read the stream live and one that reads it later agree on
what each id means, wherever they resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.errors import ProviderFailure
from symposia.providers.scripted import Script, ScriptedProvider
from tests.conftest import make_settings
from tests.sse import Frame, collect

WORDS = ["Tea ", "is ", "better ", "than ", "coffee."]
FAILURE = ProviderFailure(code="upstream_error", message="boom", provider="scripted", model="b")


@asynccontextmanager
async def serving(
    database_url: str, scripted: ScriptedProvider, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """One server process's app on `database_url`: its own, fresh, in-memory event log."""
    settings = make_settings(database_url=database_url, **overrides)
    providers = default_providers(settings)
    providers.register(scripted)
    app = create_app(settings, providers)
    container = container_of(app)
    await container.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://symposia.test"
        ) as client:
            yield client, container
    finally:
        await container.shutdown()


async def _run(client: httpx.AsyncClient, outcome: str, scripted: ScriptedProvider) -> str:
    """A run of A (words), B (nothing, then: words, a failure, or a stall) and A again."""
    scripted.add_script("a", Script(chunks=WORDS))
    b = {
        "completed": Script(chunks=[]),
        "error": Script(chunks=WORDS, fail_after=2, failure=FAILURE),
        "cancelled": Script(chunks=WORDS, stall_after=2),
    }[outcome]
    scripted.add_script("b", b)
    bots = [{"name": "A", "model": "scripted/a"}, {"name": "B", "model": "scripted/b"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 3})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _live(
    client: httpx.AsyncClient, container: Container, run_id: str, outcome: str
) -> list[Frame]:
    reading = asyncio.create_task(collect(client, f"/api/stream/{run_id}"))
    if outcome == "cancelled":
        for _ in range(500):  # until B has said its two chunks, and stalls
            events = await container.log.read(run_id)
            if sum(e.type == "token" and e.data["bot"] == 1 for e in events) == 2:
                break
            await asyncio.sleep(0.01)
        assert (await client.post(f"/api/run/{run_id}/stop")).status_code == 200
    return await asyncio.wait_for(reading, 20)


def _positions(live: list[Frame]) -> list[int]:
    """0, inside the first turn's tokens, at its end, at the start of the next turn, last."""
    first_complete = next(f.seq for f in live if f.event == "turn_complete")
    first_token = next(f.seq for f in live if f.event == "token")
    return [0, first_token + 1, first_complete, first_complete + 1, live[-1].seq]


def _check_resume(live: list[Frame], replayed: list[Frame], after: int) -> None:
    """Every id after `after` is accounted for once, each by its own event or by a snapshot
    that says which ids it stands for and carries the text of the tokens among them."""
    by_id = {f.seq: f for f in live}
    ids = [f.seq for f in replayed]
    assert ids == sorted(set(ids))
    assert all(seq > after for seq in ids)
    covered: list[int] = []
    for frame in replayed:
        original = by_id[frame.seq]  # KeyError: an id the live stream never had
        if frame.event != "snapshot":
            assert (frame.event, frame.data) == (original.event, original.data)
            covered.append(frame.seq)
            continue
        first = frame.data["first_id"]
        stands_for = [by_id[seq] for seq in range(first, frame.seq + 1)]
        tokens = "".join(f.data["delta"] for f in stands_for if f.event == "token")
        text = "".join(m["content"] for m in frame.data["messages"])
        assert tokens == text, "a snapshot carries the text of the tokens it replaces"
        covered.extend(range(max(first, after + 1), frame.seq + 1))
    assert covered == [f.seq for f in live if f.seq > after]
    if replayed:
        assert (replayed[-1].event, replayed[-1].seq) == ("done", live[-1].seq)


async def _resumes(client: httpx.AsyncClient, run_id: str, live: list[Frame]) -> None:
    for after in _positions(live):
        headers = {"Last-Event-ID": str(after)}
        if after >= live[-1].seq:  # at the `done`: nothing more, and the browser must stop
            response = await client.get(f"/api/stream/{run_id}", headers=headers)
            assert response.status_code == 204
            continue
        replayed = await collect(client, f"/api/stream/{run_id}", headers=headers)
        _check_resume(live, replayed, after)


@pytest.mark.parametrize("outcome", ["completed", "error", "cancelled"])
async def test_ids_after_a_restart_mean_what_they_meant_live(
    database_url: str, outcome: str
) -> None:
    scripted = ScriptedProvider(token_delay=0.0)
    async with serving(database_url, scripted) as (client, container):
        run_id = await _run(client, outcome, scripted)
        live = await _live(client, container, run_id, outcome)
    assert live[-1].event == "done"
    assert live[-1].data["status"] == outcome
    assert [f.seq for f in live] == list(range(1, len(live) + 1))
    async with serving(database_url, scripted) as (client, container):  # a new process
        assert not await container.log.exists(run_id)
        await _resumes(client, run_id, live)
        everything = await collect(client, f"/api/stream/{run_id}")
    kinds = [f.event for f in everything]
    assert "token" not in kinds  # compacted, as the snapshots say
    # Every turn is stored, B's empty one too, so each comes back with its own id.
    assert kinds.count("turn_complete") == sum(f.event == "turn_complete" for f in live)


async def test_ids_past_the_retention_of_the_live_log(database_url: str) -> None:
    scripted = ScriptedProvider(token_delay=0.0)
    async with serving(database_url, scripted, event_log_retention_seconds=0.05) as (
        client,
        container,
    ):
        run_id = await _run(client, "completed", scripted)
        live = await _live(client, container, run_id, "completed")
        await asyncio.sleep(0.1)
        await _run(client, "completed", scripted)  # a new stream expires the finished ones
        assert not await container.log.exists(run_id)
        await _resumes(client, run_id, live)

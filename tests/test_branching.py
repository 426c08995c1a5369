"""Issue 12, branching: a new run from the first `at_turn` turns of another, with its
lineage recorded, listed and exported."""

from __future__ import annotations

from typing import Any

import httpx

from symposia.container import Container
from tests.helpers import wait_done

BOTS = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/count"}]


async def _finished_run(client: httpx.AsyncClient, container: Container, turns: int) -> str:
    created = await client.post(
        "/api/run", json={"topic": "the topic", "bots": BOTS, "max_turns": turns}
    )
    run_id: str = created.json()["id"]
    await wait_done(container, run_id)
    return run_id


async def _export(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    exported: dict[str, Any] = (await client.get(f"/api/export/{run_id}.json")).json()
    return exported


async def test_a_branch_keeps_the_first_turns_and_goes_on_with_its_changes(
    client: httpx.AsyncClient, container: Container
) -> None:
    parent_id = await _finished_run(client, container, 4)
    response = await client.post(
        f"/api/run/{parent_id}/branch",
        json={"at_turn": 2, "bots": [{"index": 1, "temperature": 1.3}], "max_turns": 3},
    )
    assert response.status_code == 201, response.text
    branch = response.json()
    assert (branch["parent_id"], branch["branch_turn"], branch["max_turns"]) == (parent_id, 2, 3)
    events = await wait_done(container, branch["id"])

    parent, child = await _export(client, parent_id), await _export(client, branch["id"])
    assert child["status"] == "completed"
    assert (child["parent_id"], child["branch_turn"]) == (parent_id, 2)
    assert child["bots"][1]["temperature"] == 1.3
    assert parent["bots"][1]["temperature"] == 0.7  # the original is untouched
    kept, new = child["messages"][:2], child["messages"][2:]
    assert [(m["turn"], m["author"], m["content"]) for m in kept] == [
        (m["turn"], m["author"], m["content"]) for m in parent["messages"][:2]
    ]
    assert {m["id"] for m in kept}.isdisjoint({m["id"] for m in parent["messages"]})
    assert [m["turn"] for m in new] == [2]
    # Its stream carries its own turns only, numbered from 1.
    assert events[0].seq == 1
    assert [e.data["turn"] for e in events if e.type == "turn_start"] == [2]
    assert parent["branches"] == [{"id": branch["id"], "branch_turn": 2}]
    listed = {r["id"]: r for r in (await client.get("/api/runs")).json()["items"]}
    assert (listed[branch["id"]]["parent_id"], listed[branch["id"]]["branch_turn"]) == (
        parent_id,
        2,
    )
    assert listed[parent_id]["parent_id"] is None


async def test_a_branch_at_turn_zero_starts_over(
    client: httpx.AsyncClient, container: Container
) -> None:
    parent_id = await _finished_run(client, container, 2)
    branch = (await client.post(f"/api/run/{parent_id}/branch", json={"at_turn": 0})).json()
    await wait_done(container, branch["id"])
    child = await _export(client, branch["id"])
    assert [m["turn"] for m in child["messages"]] == [0, 1]


async def test_bad_branches_are_refused(client: httpx.AsyncClient, container: Container) -> None:
    parent_id = await _finished_run(client, container, 2)
    too_far = await client.post(f"/api/run/{parent_id}/branch", json={"at_turn": 3})
    assert too_far.status_code == 422
    assert too_far.json()["field"] == "at_turn"
    no_bot = await client.post(
        f"/api/run/{parent_id}/branch", json={"at_turn": 1, "bots": [{"index": 5, "model": "x/y"}]}
    )
    assert no_bot.status_code == 422
    twice = await client.post(
        f"/api/run/{parent_id}/branch",
        json={"at_turn": 1, "bots": [{"index": 0, "temperature": 1}, {"index": 0}]},
    )
    assert twice.status_code == 422
    missing = await client.post("/api/run/nope/branch", json={"at_turn": 0})
    assert missing.status_code == 404
    negative = await client.post(f"/api/run/{parent_id}/branch", json={"at_turn": -1})
    assert negative.status_code == 422

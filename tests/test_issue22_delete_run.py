"""Issue 22, point 1: runs had no DELETE, so a user could not even remove a run that broke
their list. `DELETE /api/run/{id}`: the owner's only (404 to anyone else), a live run
stopped first and its stream ended, then the run and its transcript gone (204)."""

from __future__ import annotations

import asyncio

import httpx

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_done
from tests.test_security import _key, http, secure, secure_app, secure_overrides

__all__ = ["http", "secure", "secure_app", "secure_overrides"]  # fixtures used here

BOTS = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]


async def test_the_owner_deletes_a_finished_run_and_nobody_else_can(
    http: httpx.AsyncClient, secure: Container
) -> None:
    alice, bob = await _key(secure, "alice"), await _key(secure, "bob")
    created = await http.post(
        "/api/run", headers=alice, json={"topic": "t", "bots": BOTS, "max_turns": 2}
    )
    run_id = created.json()["id"]
    await wait_done(secure, run_id)
    branch = await http.post(f"/api/run/{run_id}/branch", headers=alice, json={"at_turn": 1})
    await wait_done(secure, branch.json()["id"])

    assert (await http.delete(f"/api/run/{run_id}", headers=bob)).status_code == 404
    assert (await http.get(f"/api/run/{run_id}", headers=alice)).status_code == 200

    deleted = await http.delete(f"/api/run/{run_id}", headers=alice)
    assert deleted.status_code == 204, deleted.text
    for path in (f"/api/run/{run_id}", f"/api/export/{run_id}.json", f"/api/stream/{run_id}"):
        assert (await http.get(path, headers=alice)).status_code == 404, path
    assert (await http.delete(f"/api/run/{run_id}", headers=alice)).status_code == 404
    listed = (await http.get("/api/runs", headers=alice)).json()["items"]
    assert [run["id"] for run in listed] == [branch.json()["id"]]  # the branch stays
    assert (await secure.run_repository.get(run_id)) is None


async def test_deleting_a_live_run_stops_it_and_ends_its_stream(
    http: httpx.AsyncClient, secure: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    alice = await _key(secure)
    bots = [{"name": "A", "model": "scripted/stall"}, {"name": "B", "model": "scripted/stall"}]
    run_id = (await http.post("/api/run", headers=alice, json={"topic": "t", "bots": bots})).json()[
        "id"
    ]
    viewer = asyncio.create_task(wait_done(secure, run_id, timeout=10))
    deleted = await http.delete(f"/api/run/{run_id}", headers=alice)
    assert deleted.status_code == 204, deleted.text
    events = await viewer
    assert events[-1].type == "done"
    assert (await http.get(f"/api/run/{run_id}", headers=alice)).status_code == 404
    assert secure.runs.active_count == 0
    # Its place under MAX_CONCURRENT_RUNS_PER_PRINCIPAL is free again.
    again = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": BOTS})
    assert again.status_code == 201

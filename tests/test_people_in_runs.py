"""Issue 12, people in the loop: a person's message to a running run is stored, streamed
with its author before the next turn, and seen by the next speaker."""

from __future__ import annotations

import asyncio

import httpx

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_done, wait_for_event
from tests.sse import collect


async def test_a_person_speaks_in_and_the_next_speaker_sees_it(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=[f"w{i} " for i in range(10)], delay=0.02))
    bots = [{"name": "A", "model": "scripted/slow"}, {"name": "B", "model": "scripted/echo"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 2})
    run_id = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    said = await client.post(
        f"/api/run/{run_id}/messages", json={"content": "Think of the cost.", "author": "Ana"}
    )
    assert said.status_code == 201, said.text
    events = await wait_done(container, run_id)
    kinds = [e.type for e in events]
    at = kinds.index("person_message")
    assert kinds[at - 1] == "turn_complete"  # after A's turn, before B's
    assert kinds[at + 1] == "turn_start"
    assert events[at].data["author"] == "Ana"
    assert events[at].data["content"] == "Think of the cost."
    assert events[at].data["turn"] == 1  # said during turn 0: turn 1 is the first to see it
    # B (echo) quotes the last message it saw: the conversation reached it with Ana's words.
    request = scripted.requests[-1]
    assert any("Ana: Think of the cost." in m.content for m in request.messages)
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    people = [m for m in exported["messages"] if m["role"] == "user"]
    assert [(p["author"], p["content"]) for p in people] == [("Ana", "Think of the cost.")]
    # The stream rebuilt from storage has it at the same id.
    await asyncio.sleep(0)
    container.log._streams.pop(run_id)  # type: ignore[attr-defined]  # the live log is gone
    rebuilt = await collect(client, f"/api/stream/{run_id}")
    again = next(f for f in rebuilt if f.event == "person_message")
    assert (int(again.id or 0), again.data) == (events[at].seq, events[at].data)


async def test_messages_to_a_finished_or_unknown_run_are_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
    run_id = (
        await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 1})
    ).json()["id"]
    await wait_done(container, run_id)
    finished = await client.post(f"/api/run/{run_id}/messages", json={"content": "late"})
    assert finished.status_code == 409
    unknown = await client.post("/api/run/nope/messages", json={"content": "x"})
    assert unknown.status_code == 404
    empty = await client.post(f"/api/run/{run_id}/messages", json={"content": "  "})
    assert empty.status_code == 422
    huge = await client.post(f"/api/run/{run_id}/messages", json={"content": "x" * 100_001})
    assert huge.status_code == 413


async def test_a_bot_edit_is_an_event_before_the_turn_that_uses_it(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=[f"w{i} " for i in range(10)], delay=0.02))
    bots = [{"name": "A", "model": "scripted/slow"}, {"name": "B", "model": "scripted/echo"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 3})
    run_id = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    patched = await client.patch(f"/api/run/{run_id}/bot/1", json={"temperature": 1.5})
    assert patched.status_code == 200, patched.text
    events = await wait_done(container, run_id)
    kinds = [e.type for e in events]
    at = kinds.index("bot_updated")
    assert events[at].data == {"bot": 1, "name": "B", "changes": {"temperature": 1.5}, "turn": 1}
    assert kinds[at - 1] == "turn_complete"
    assert (kinds[at + 1], events[at + 1].data["turn"]) == ("turn_start", 1)
    assert scripted.requests[-2].temperature == 1.5  # B's turn 1 used it
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    assert [(e["bot"], e["changes"], e["turn"]) for e in exported["edits"]] == [
        (1, {"temperature": 1.5}, 1)
    ]
    container.log._streams.pop(run_id)  # type: ignore[attr-defined]  # the live log is gone
    rebuilt = await collect(client, f"/api/stream/{run_id}")
    again = next(f for f in rebuilt if f.event == "bot_updated")
    assert (int(again.id or 0), again.data) == (events[at].seq, events[at].data)

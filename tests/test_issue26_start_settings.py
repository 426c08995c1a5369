"""Issue 26, transcripts: a run stores each bot's settings as it started, so its exports show
what every bot began with and each change after (an edit stores only the new values); a
run stored before start settings were kept still exports, saying its settings are the
end's. On SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.storage.tables import RunBotRow
from tests.helpers import wait_done, wait_for_event

BOTS = [
    {"name": "Pro", "model": "scripted/slow26", "system_prompt": "Argue for.", "temperature": 0.7},
    {"name": "Contra", "model": "scripted/slow26", "system_prompt": "Argue against."},
]


async def _edited_run(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> str:
    """A three-turn run whose first bot is edited (temperature, prompt) during turn 0."""
    scripted.add_script("slow26", Script(chunks=["w "] * 6, delay=0.05))
    created = await client.post("/api/run", json={"topic": "Trains?", "bots": BOTS, "max_turns": 3})
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    await wait_for_event(container, run_id, lambda event: event.type == "turn_start")
    patched = await client.patch(
        f"/api/run/{run_id}/bot/0", json={"temperature": 1.5, "system_prompt": "Argue hard."}
    )
    assert patched.status_code == 200, patched.text
    await wait_done(container, run_id)
    return run_id


async def test_exports_show_the_start_settings_and_each_change_after(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    run_id = await _edited_run(client, container, scripted)
    document = (await client.get(f"/api/export/{run_id}.json")).json()
    start = document["start_bots"]
    assert [(b["name"], b["temperature"], b["system_prompt"]) for b in start] == [
        ("Pro", 0.7, "Argue for."),
        ("Contra", 0.7, "Argue against."),
    ]
    assert (document["bots"][0]["temperature"], document["bots"][0]["system_prompt"]) == (
        1.5,
        "Argue hard.",
    )
    assert [e["changes"] for e in document["edits"]] == [
        {"temperature": 1.5, "system_prompt": "Argue hard."}
    ]
    markdown = (await client.get(f"/api/export/{run_id}.md")).text
    participant = markdown.split("## Participant 1: Pro", 1)[1].split("## Participant 2", 1)[0]
    assert "| Temperature | 0.7 |" in participant
    assert "Argue for." in participant
    changes = markdown.split("## Changes during the run", 1)[1].split("## Transcript", 1)[0]
    assert "| From turn 2 | Pro: " in changes
    assert "temperature 0.7 → 1.5" in changes
    assert "system prompt (below)" in changes
    assert "Argue hard." in changes
    # Imported, the document keeps its start settings.
    imported = await client.post("/api/runs/import", json=document)
    assert imported.status_code == 201, imported.text
    again = (await client.get(f"/api/export/{imported.json()['id']}.json")).json()
    assert again["start_bots"] == start


async def test_a_run_stored_without_start_settings_still_exports(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    run_id = await _edited_run(client, container, scripted)
    async with container.engine.begin() as connection:
        forgotten = update(RunBotRow).where(RunBotRow.run_id == run_id).values(start=None)
        await connection.execute(forgotten)
    document = (await client.get(f"/api/export/{run_id}.json")).json()
    assert "start_bots" not in document
    markdown = (await client.get(f"/api/export/{run_id}.md")).text
    assert "as the run ended (its start was not recorded)" in markdown
    assert "temperature 1.5 (at" in markdown
    pdf = await client.get(f"/api/export/{run_id}.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")


async def test_an_import_with_start_settings_for_other_bots_is_refused(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    run_id = await _edited_run(client, container, scripted)
    document = (await client.get(f"/api/export/{run_id}.json")).json()
    document["start_bots"] = document["start_bots"] + [document["start_bots"][0]]
    refused = await client.post("/api/runs/import", json=document)
    assert refused.status_code == 422, refused.text
    assert "start_bots" in refused.text

"""Issue 22, point 7: an imported run skipped the rules POST /api/run enforces (a
500,000-character topic, a 300 KB system prompt, an unknown policy or termination,
duplicate bot names, a human with a model were imported, and branching then ran them).

Its settings are validated as a new run's are, a 422 naming the field; its transcript
may still be longer than a new run allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from symposia.container import Container
from tests.helpers import wait_done

BOTS = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
Change = Callable[[dict[str, Any]], None]


def _bot(index: int, **fields: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        document["bots"][index].update(fields)

    return change


def _set(**fields: Any) -> Change:
    return lambda document: document.update(fields)


BROKEN: list[tuple[str, Change, str]] = [
    ("long topic", _set(topic="t" * 500_000), "topic"),
    ("empty topic", _set(topic=" "), "topic"),
    ("long system prompt", _bot(0, system_prompt="p" * 300_000), "bots.0.system_prompt"),
    ("unknown policy", _set(policy="chaos", strategy="chaos"), "policy"),
    ("unknown policy setting", _set(policy_config={"max_rounds": 3}), "policy_config"),
    ("unknown termination", _set(termination={"never": True}), "termination"),
    ("duplicate names", _bot(1, name="A"), "bots"),
    ("human with a model", _bot(1, kind="human"), "bots.1"),
    ("bot without a model", _bot(1, model=""), "bots.1.model"),
    ("too many fallbacks", _bot(0, fallbacks=["scripted/echo"] * 5), "bots.0.fallbacks"),
    ("long description", _bot(0, description="d" * 3000), "bots.0.description"),
    ("max_tokens over the limit", _bot(0, max_tokens=10**6), "bots.0.max_tokens"),
]


@pytest.fixture
async def document(client: httpx.AsyncClient, container: Container) -> dict[str, Any]:
    created = await client.post("/api/run", json={"topic": "t", "bots": BOTS, "max_turns": 2})
    run_id = created.json()["id"]
    await wait_done(container, run_id)
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    assert (await client.delete(f"/api/run/{run_id}")).status_code == 204
    return dict(exported)


@pytest.mark.parametrize(("name", "change", "field"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_an_import_with_settings_a_new_run_may_not_have_is_422(
    client: httpx.AsyncClient, document: dict[str, Any], name: str, change: Change, field: str
) -> None:
    change(document)
    response = await client.post("/api/runs/import", json=document)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.text
    assert (await client.get("/api/runs")).json()["items"] == []


async def test_an_imported_transcript_may_be_longer_than_a_new_run_allows(
    client: httpx.AsyncClient, container: Container, document: dict[str, Any]
) -> None:
    turn = document["messages"][-1]
    turn["content"] = "x" * (container.settings.max_message_chars + 1)
    document["max_turns"] = container.settings.run_max_turns + 5
    imported = await client.post("/api/runs/import", json=document)
    assert imported.status_code == 201, imported.text
    branched = await client.post(f"/api/run/{imported.json()['id']}/branch", json={"at_turn": 0})
    assert branched.status_code == 201, branched.text

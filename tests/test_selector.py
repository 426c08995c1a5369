"""Issue 12, policy `selector`: a supervisor model picks the next speaker; its choice and
answer are events; garbage answers fall back as documented; repeats and transitions are
honoured; bad settings are a 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_done

AGENTS = [
    {"name": "Planner", "model": "scripted/echo", "description": "breaks the work down"},
    {"name": "Coder", "model": "scripted/echo", "description": "writes the code"},
    {"name": "Critic", "model": "scripted/echo", "description": "finds the flaws"},
]


async def _selector_run(
    client: httpx.AsyncClient, container: Container, config: dict[str, Any], turns: int = 3
) -> tuple[list[Any], dict[str, Any]]:
    created = await client.post(
        "/api/run",
        json={
            "topic": "build a parser",
            "bots": AGENTS,
            "max_turns": turns,
            "policy": "selector",
            "policy_config": config,
        },
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    events = await wait_done(container, run_id)
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    return events, exported


def _selections(events: list[Any]) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == "speaker_selected"]


async def test_the_supervisor_picks_and_the_viewer_sees_why(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("boss", Script(chunks=["The ", "Critic, ", "to review."]))
    events, run = await _selector_run(
        client, container, {"model": "scripted/boss", "allow_repeat": True}, turns=2
    )
    picks = _selections(events)
    assert [(p["name"], p["attempts"], p["fallback"]) for p in picks] == [("Critic", 1, False)] * 2
    assert picks[0]["answer"] == "The Critic, to review."
    assert [m["author"] for m in run["messages"]] == ["Critic", "Critic"]
    kinds = [e.type for e in events]
    assert kinds[kinds.index("speaker_selected") + 1] == "turn_start"
    # The supervisor saw the agents' descriptions and the allowed names.
    prompt = next(r for r in scripted.requests if r.model == "boss").messages[0].content
    assert "- Coder: writes the code" in prompt
    assert "Choose one of: Planner, Coder, Critic" in prompt


async def test_garbage_answers_fall_back_after_the_attempts(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("mumbler", Script(chunks=["hmm, hard to say"]))
    events, run = await _selector_run(
        client, container, {"model": "scripted/mumbler", "max_attempts": 2}, turns=3
    )
    picks = _selections(events)
    # The fallback: the next allowed agent after the last speaker, in the order given.
    assert [(p["name"], p["attempts"], p["fallback"]) for p in picks] == [
        ("Planner", 2, True),
        ("Coder", 2, True),
        ("Critic", 2, True),
    ]
    # The export keeps each turn's choice (the event stream is not kept for ever).
    assert [m["routing"] for m in run["messages"] if m["bot_index"] is not None] == [
        {
            "agent": p["name"],
            "reason": "hmm, hard to say",
            "attempts": 2,
            "fallback": True,
            "model": "scripted/mumbler",
        }
        for p in picks
    ]
    markdown = (await client.get(f"/api/export/{run['id']}.md")).text
    assert markdown.count("routed to ") == 3, markdown
    asked = [r for r in scripted.requests if r.model == "mumbler"]
    assert len(asked) == 6
    assert "That is not one of the names allowed" in asked[1].messages[-1].content


async def test_no_repeat_by_default_and_transitions_limit_the_choice(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("fan", Script(chunks=["Coder"]))
    events, _ = await _selector_run(client, container, {"model": "scripted/fan"}, turns=2)
    # Coder may not follow Coder: the answer is refused, and the fallback picks Critic.
    assert [(p["name"], p["fallback"]) for p in _selections(events)] == [
        ("Coder", False),
        ("Critic", True),
    ]
    graph = {"Coder": ["Critic"], "Critic": ["Planner"], "Planner": ["Coder"]}
    events, _ = await _selector_run(
        client, container, {"model": "scripted/fan", "transitions": graph}, turns=3
    )
    # After Coder only Critic is allowed: one candidate, chosen without asking.
    picks = _selections(events)
    assert [(p["name"], p["attempts"]) for p in picks] == [
        ("Coder", 1),
        ("Critic", 0),
        ("Planner", 0),
    ]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"nonsense": 1}, "policy_config"),
        ({"model": "noslash"}, "policy_config.model"),
        ({"max_attempts": 0}, "policy_config.max_attempts"),
        ({"allow_repeat": "yes"}, "policy_config.allow_repeat"),
        ({"prompt": "who next?"}, "policy_config.prompt"),
        ({"transitions": {"Nobody": ["Coder"]}}, "policy_config.transitions"),
        ({"transitions": {"Coder": ["Ghost"]}}, "policy_config.transitions"),
    ],
)
async def test_bad_settings_are_a_422(
    client: httpx.AsyncClient, config: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/run",
        json={"topic": "t", "bots": AGENTS, "policy": "selector", "policy_config": config},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_presets_are_listed_and_start_a_run_from_a_topic_alone(
    client: httpx.AsyncClient, container: Container
) -> None:
    listed = {p["name"]: p for p in (await client.get("/api/presets")).json()["items"]}
    assert {"debate", "panel"} <= set(listed)
    assert listed["panel"]["body"]["policy"] == "selector"
    created = await client.post("/api/run", json={"topic": "cars in cities", "preset": "debate"})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    await wait_done(container, run_id)
    run = (await client.get(f"/api/export/{run_id}.json")).json()
    assert [b["name"] for b in run["bots"]] == ["Proponent", "Opponent"]
    assert [b["model"] for b in run["bots"]] == ["scripted/echo"] * 2  # DEFAULT_MODEL
    assert run["turn_count"] == 6
    # Fields given replace the preset's.
    created = await client.post("/api/run", json={"topic": "t", "preset": "panel", "max_turns": 1})
    run_id = created.json()["id"]
    await wait_done(container, run_id)
    run = (await client.get(f"/api/export/{run_id}.json")).json()
    assert (run["policy"], run["turn_count"], len(run["bots"])) == ("selector", 1, 3)
    assert run["termination"] == {"mention": "TERMINATE"}
    unknown = await client.post("/api/run", json={"topic": "t", "preset": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "preset"


@pytest.mark.local_model
async def test_the_local_model_selects_validly_held_by_the_choice_schema(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Asked with the choice's schema, the 135M local supervisor's grammar lets it name
    only an allowed agent: no fallback, first time, every turn."""
    if not container.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    events, _ = await _selector_run(client, container, {"model": "local/smollm2"}, turns=3)
    selections = _selections(events)
    assert len(selections) == 3
    assert all(s["fallback"] is False and s["attempts"] <= 1 for s in selections)

"""Issue 12, policy `moderated` (Liang et al. 2023): two sides, a moderator who judges each
round in a strict structured form, an early end when it decides, else a judge's verdict."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_done

SIDES = [
    {"name": "Affirmative", "model": "scripted/echo"},
    {"name": "Negative", "model": "scripted/echo"},
]
DECIDED = '{"decided": true, "winner": "Negative", "reason": "stronger", "answer": "No"}'
UNDECIDED = '{"decided": false, "winner": null, "reason": "even", "answer": ""}'


async def _debate(
    client: httpx.AsyncClient, container: Container, **config: Any
) -> tuple[list[Any], dict[str, Any]]:
    created = await client.post(
        "/api/run",
        json={
            "topic": "Is 0.999... = 1?",
            "bots": SIDES,
            "policy": "moderated",
            "policy_config": config,
        },
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    events = await wait_done(container, run_id)
    return events, (await client.get(f"/api/export/{run_id}.json")).json()


async def test_the_moderator_ends_the_debate_when_it_decides(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("mod", Script(chunks=["```json\n", DECIDED, "\n```"]))
    events, run = await _debate(client, container, moderator_model="scripted/mod", max_rounds=3)
    assert run["ended_by"] == "moderator"
    assert [(m["author"], m["round"]) for m in run["messages"]] == [
        ("Affirmative", 0),
        ("Negative", 0),
    ]
    verdict = next(e for e in events if e.type == "verdict").data
    assert verdict == {
        "method": "moderator",
        "answer": "No",
        "votes": {},
        "reason": "stronger",
        "winner": "Negative",
    }
    assert run["verdict"] == verdict
    assert run["moderation"] == [
        {"decided": True, "winner": "Negative", "reason": "stronger", "answer": "No", "round": 0}
    ]


async def test_without_a_decision_a_judge_gives_the_verdict_after_the_rounds(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("mod", Script(chunks=[UNDECIDED]))
    scripted.add_script("judge", Script(chunks=[DECIDED.replace("Negative", "Affirmative")]))
    events, run = await _debate(
        client,
        container,
        moderator_model="scripted/mod",
        judge_model="scripted/judge",
        max_rounds=2,
    )
    assert run["ended_by"] == "max_rounds"
    assert [m["round"] for m in run["messages"]] == [0, 0, 1, 1]
    assert [a["decided"] for a in run["moderation"]] == [False, False]
    verdict = next(e for e in events if e.type == "verdict").data
    assert (verdict["method"], verdict["winner"]) == ("judge", "Affirmative")


async def test_a_malformed_assessment_is_asked_again_then_taken_as_undecided(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("mod", Script(chunks=['{"decided": true, "winner": "Nobody"}']))
    scripted.add_script("judge", Script(chunks=[DECIDED]))
    _, run = await _debate(
        client,
        container,
        moderator_model="scripted/mod",
        judge_model="scripted/judge",
        max_rounds=1,
        max_attempts=2,
    )
    asked = [r for r in scripted.requests if r.model == "mod"]
    assert len(asked) == 2
    assert "`winner` must be one of Affirmative, Negative" in asked[1].messages[-1].content
    assert run["moderation"][0]["decided"] is False
    assert run["verdict"]["method"] == "judge"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"policy_config": {"max_rounds": 0}}, "policy_config.max_rounds"),
        ({"policy_config": {"moderator_model": "x"}}, "policy_config.moderator_model"),
        ({"policy_config": {"extra": 1}}, "policy_config"),
        ({"bots": [*SIDES, {"name": "Third", "model": "scripted/echo"}]}, "bots"),
    ],
)
async def test_bad_debates_are_a_422(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/run", json={"topic": "t", "bots": SIDES, "policy": "moderated", **body}
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_the_research_presets_start_their_policies(
    client: httpx.AsyncClient, container: Container
) -> None:
    for preset, policy in (("du2023", "rounds"), ("mad", "moderated")):
        created = await client.post("/api/run", json={"topic": "2 + 2?", "preset": preset})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        await wait_done(container, run_id)
        run = (await client.get(f"/api/export/{run_id}.json")).json()
        assert run["policy"] == policy
        assert run["verdict"] is not None


@pytest.mark.local_model
async def test_the_local_model_moderates_in_the_assessment_schema(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Asked with the assessment's schema, the 135M local moderator's grammar lets it
    answer only a valid assessment: every round is assessed, none falls through."""
    if not container.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    events, run = await _debate(
        client, container, moderator_model="local/smollm2", judge_model="local/smollm2"
    )
    assert run["status"] == "completed"
    assert run["moderation"]  # each assessment parsed
    verdict = next(e for e in events if e.type == "verdict").data
    assert verdict["winner"] in {"Affirmative", "Negative"}

"""Issue 12, policy `rounds` (Du et al. 2023): all agents answer each round in parallel,
their tokens interleaved on one stream; each sees only the previous round's answers of the
others; the final answer is a vote or a judge's verdict."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.domain.models import BotConfig
from symposia.orchestration.policies.rounds import extract
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_done, wait_for_event
from tests.test_takeover import Servers, _events, servers  # noqa: F401 (the fixture)


def _agents(*models: str) -> list[dict[str, Any]]:
    return [{"name": f"Agent{i}", "model": m} for i, m in enumerate(models)]


async def _rounds_run(
    client: httpx.AsyncClient, container: Container, bots: list[dict[str, Any]], **config: Any
) -> tuple[list[Any], dict[str, Any]]:
    created = await client.post(
        "/api/run",
        json={
            "topic": "What is 6 times 7?",
            "bots": bots,
            "policy": "rounds",
            "policy_config": config,
        },
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    events = await wait_done(container, run_id)
    return events, (await client.get(f"/api/export/{run_id}.json")).json()


@pytest.fixture(autouse=True)
def _scripts(scripted: ScriptedProvider) -> None:
    slow = [f"step{i} " for i in range(6)]
    scripted.add_script("right", Script(chunks=[*slow, "\nAnswer: 42."], delay=0.01))
    scripted.add_script("wrong", Script(chunks=[*slow, "\nanswer: 41"], delay=0.01))
    scripted.add_script("judge", Script(chunks=["Answer: 42\n", "Most agents agree."]))


async def test_a_round_streams_its_agents_interleaved_and_ids_stay_gap_free(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    bots = _agents("scripted/right", "scripted/right", "scripted/wrong")
    events, run = await _rounds_run(client, container, bots, max_rounds=2)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    tokens = [e.data["bot"] for e in events if e.type == "token"]
    switches = sum(1 for a, b in itertools.pairwise(tokens) if a != b)
    assert switches > 6  # interleaved, not one agent after the other
    starts = [(e.data["round"], e.data["bot"]) for e in events if e.type == "turn_start"]
    assert sorted(starts) == [(r, b) for r in (0, 1) for b in (0, 1, 2)]
    assert run["ended_by"] == "max_rounds"
    assert [(m["round"], m["status"]) for m in run["messages"]] == [(0, "complete")] * 3 + [
        (1, "complete")
    ] * 3
    assert run["verdict"] is None  # no aggregation asked


async def test_each_agent_sees_only_the_previous_rounds_answers_of_the_others(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    bots = _agents("scripted/right", "scripted/wrong")
    await _rounds_run(client, container, bots, max_rounds=2)
    second_round = [r for r in scripted.requests][-2:]
    for request in second_round:
        shown = [m.content for m in request.messages]
        assert shown[0] == "What is 6 times 7?"
        assert "step0" in shown[1]  # its own answer of round 0 (as assistant)
        update = shown[2]
        assert update.startswith("These are the answers of the other agents")
        assert update.count("Agent") == 1  # the one other agent, not itself
    wrongs_view = next(r for r in second_round if r.model == "wrong").messages[2].content
    assert "Agent0:" in wrongs_view
    assert "Answer: 42." in wrongs_view


async def test_the_majority_vote_is_the_verdict(
    client: httpx.AsyncClient, container: Container
) -> None:
    bots = _agents("scripted/right", "scripted/wrong", "scripted/right")
    events, run = await _rounds_run(client, container, bots, max_rounds=1, aggregation="vote")
    verdict = next(e for e in events if e.type == "verdict").data
    assert verdict == {
        "method": "vote",
        "answer": "42.",
        "votes": {"42": 2, "41": 1},
        "reason": "",
        "winner": None,
    }
    assert run["verdict"] == verdict
    assert [e.type for e in events][-3:] == ["verdict", "run_status", "done"]


async def test_a_judge_gives_the_verdict(client: httpx.AsyncClient, container: Container) -> None:
    bots = _agents("scripted/right", "scripted/wrong")
    events, run = await _rounds_run(
        client, container, bots, max_rounds=1, aggregation="judge", judge_model="scripted/judge"
    )
    verdict = next(e for e in events if e.type == "verdict").data
    assert verdict["method"] == "judge"
    assert verdict["answer"] == "42"
    assert "Most agents agree." in verdict["reason"]
    assert run["verdict"] == verdict


def test_answers_are_extracted_as_documented() -> None:
    assert extract("I think...\nAnswer: 42") == "42"
    assert extract("answer: 1\nthen ANSWER:  7 ") == "7"
    assert extract("no marker\n\n  last line  \n") == "last line"
    assert extract("") == ""


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"max_rounds": 0}, "policy_config.max_rounds"),
        ({"aggregation": "average"}, "policy_config.aggregation"),
        ({"judge_model": "nope"}, "policy_config.judge_model"),
        ({"bogus": True}, "policy_config"),
    ],
)
async def test_bad_settings_are_a_422(
    client: httpx.AsyncClient, config: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/run",
        json={
            "topic": "t",
            "bots": _agents("scripted/right", "scripted/wrong"),
            "policy": "rounds",
            "policy_config": config,
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_a_round_cut_by_a_dead_owner_is_kept_and_not_asked_again(
    servers: Servers,  # noqa: F811
    scripted: ScriptedProvider,
) -> None:
    scripted.add_script("stall", Script(chunks=["half ", "an answer ", "never"], stall_after=2))
    first = await servers("redis")
    run = await first.runs.create(
        "q",
        [BotConfig("A", "scripted/right", ""), BotConfig("B", "scripted/stall", "")],
        10,
        owner="dev",
        policy="rounds",
        policy_config={"max_rounds": 1, "aggregation": "vote"},
    )
    await wait_for_event(
        first, run.id, lambda e: e.type == "token" and e.data["delta"] == "an answer "
    )
    await wait_for_event(first, run.id, lambda e: e.type == "turn_complete")  # A's answer
    await first.liveness.close()  # the owner stops renewing its lease
    second = await servers("redis")
    events = await _events(second, run.id)
    stored = await second.run_repository.get(run.id)
    assert stored is not None
    assert sorted((m.author, m.round, m.status.value, m.content) for m in stored.messages) == [
        ("A", 0, "complete", " ".join(f"step{i}" for i in range(6)) + " \nAnswer: 42."),
        ("B", 0, "partial", "half an answer "),
    ]
    assert stored.ended_by == "max_rounds"
    assert sum(1 for r in scripted.requests if r.model == "stall") == 1  # not asked again
    assert next(e for e in events if e.type == "verdict").data["votes"] == {
        "42": 1,
        "half an answer": 1,
    }

"""Issue 12, termination and budgets: conditions (alone and combined) end a run by name;
each turn's cost is stored; a cost budget stops the run before a turn could exceed it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.domain.models import BotConfig, Message, Run, TurnUsage, utcnow
from symposia.orchestration import termination
from symposia.providers.pricing import PriceTable
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings, SettingsError, load_settings
from tests.conftest import make_settings
from tests.helpers import wait_done


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    prices = tmp_path / "prices.json"
    # 10 dollars per million tokens both ways: a 50-token turn costs about $0.0005 here.
    prices.write_text(json.dumps({"scripted/pricey": {"input": 10, "output": 10}}))
    return make_settings(database_url=database_url, prices_file=str(prices))


def _bots(model: str = "scripted/echo", max_tokens: int = 20) -> list[dict[str, Any]]:
    return [
        {"name": "A", "model": model, "max_tokens": max_tokens},
        {"name": "B", "model": model, "max_tokens": max_tokens},
    ]


async def _run(
    client: httpx.AsyncClient, container: Container, **body: Any
) -> tuple[dict[str, Any], list[Any]]:
    created = await client.post("/api/run", json={"topic": "t", "bots": _bots(), **body})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    events = await wait_done(container, run_id)
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    return exported, events


async def test_max_turns_ends_the_run_by_name(
    client: httpx.AsyncClient, container: Container
) -> None:
    run, events = await _run(client, container, max_turns=3)
    assert run["ended_by"] == "max_turns"
    assert run["turn_count"] == 3
    assert events[-2].data == {"status": "completed", "ended_by": "max_turns"}
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}


async def test_a_mention_ends_the_run_after_the_turn_that_said_it(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("agree", Script(chunks=["I think ", "we agree. ", "TERMINATE"]))
    bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/agree"}]
    created = await client.post(
        "/api/run",
        json={"topic": "t", "bots": bots, "max_turns": 10, "termination": {"mention": "terminate"}},
    )
    run_id = created.json()["id"]
    events = await wait_done(container, run_id)
    run = (await client.get(f"/api/export/{run_id}.json")).json()
    assert run["ended_by"] == "mention"
    assert run["turn_count"] == 2  # A, then B who said it
    assert events[-1].data == {"status": "completed", "ended_by": "mention"}


async def test_any_and_all_combine_conditions(
    client: httpx.AsyncClient, container: Container
) -> None:
    either = {"any": [{"max_turns": 2}, {"mention": "never said"}]}
    run, _ = await _run(client, container, max_turns=10, termination=either)
    assert (run["ended_by"], run["turn_count"]) == ("max_turns", 2)
    # `all`: both at once; tokens pass their bound long before turn 4 does.
    both = {"all": [{"max_turns": 4}, {"max_tokens": 1}]}
    run, _ = await _run(client, container, max_turns=10, termination=both)
    assert (run["ended_by"], run["turn_count"]) == ("max_turns+max_tokens", 4)


async def test_max_tokens_counts_the_runs_usage(
    client: httpx.AsyncClient, container: Container
) -> None:
    run, _ = await _run(client, container, max_turns=10, termination={"max_tokens": 30})
    used = sum(
        m["usage"]["prompt_tokens"] + m["usage"]["completion_tokens"] for m in run["messages"]
    )
    assert run["ended_by"] == "max_tokens"
    assert used >= 30
    first_turns = run["messages"][:-1]
    assert (
        sum(m["usage"]["prompt_tokens"] + m["usage"]["completion_tokens"] for m in first_turns) < 30
    )


async def test_a_cost_budget_stops_before_a_turn_could_exceed_it(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("pricey", Script(chunks=["costly ", "words ", "here "]))
    budget = 0.0012
    created = await client.post(
        "/api/run",
        json={
            "topic": "t",
            "bots": _bots("scripted/pricey", max_tokens=40),
            "max_turns": 50,
            "termination": {"max_cost_usd": budget},
        },
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    await wait_done(container, run_id)
    run = (await client.get(f"/api/export/{run_id}.json")).json()
    costs = [m["cost_usd"] for m in run["messages"]]
    assert run["ended_by"] == "max_cost_usd"
    assert all(isinstance(c, float) and c > 0 for c in costs)
    assert sum(costs) <= budget  # stopped before, never after
    assert 1 <= len(costs) < 50


async def test_turns_are_priced_and_free_models_cost_nothing(
    client: httpx.AsyncClient, container: Container
) -> None:
    run, _ = await _run(client, container, max_turns=2)
    assert [m["cost_usd"] for m in run["messages"]] == [0.0, 0.0]


async def test_a_budget_with_an_unpriced_model_is_refused(client: httpx.AsyncClient) -> None:
    bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "openai/unknown-x"}]
    body = {"topic": "t", "bots": bots, "termination": {"max_cost_usd": 1}}
    response = await client.post("/api/run", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "bots.1.model"
    assert "PRICES_FILE" in response.json()["message"]


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"max_turns": 0}, "termination.max_turns"),
        ({"max_turns": "3"}, "termination.max_turns"),
        ({"max_turns": True}, "termination.max_turns"),
        ({"mention": "  "}, "termination.mention"),
        ({"bogus": 1}, "termination"),
        ({"max_turns": 2, "mention": "x"}, "termination"),
        ({"any": []}, "termination.any"),
        ({"any": [{"all": [{"nope": 1}]}]}, "termination.any.0.all.0"),
    ],
)
async def test_bad_conditions_are_a_422_naming_where(
    client: httpx.AsyncClient, condition: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/run", json={"topic": "t", "bots": _bots(), "termination": condition}
    )
    assert response.status_code == 422, response.text
    assert field in response.text


def _run_with(messages: list[Message], **fields: Any) -> Run:
    bots = [BotConfig("A", "scripted/echo", ""), BotConfig("B", "scripted/echo", "")]
    run = Run(topic="t", bots=bots, max_turns=100, messages=messages, **fields)
    return run


def test_timeout_rounds_and_the_moderator_read_the_run() -> None:
    now = utcnow()
    run = _run_with([], started_at=now - timedelta(seconds=30))
    assert termination.met({"timeout_seconds": 10}, run, now) == "timeout_seconds"
    assert termination.met({"timeout_seconds": 60}, run, now) is None
    run.policy_state = {"rounds_done": 3, "decided": True}
    assert termination.met({"max_rounds": 3}, run, now) == "max_rounds"
    assert termination.met({"max_rounds": 4}, run, now) is None
    assert termination.met({"moderator": True}, run, now) == "moderator"
    assert termination.met({"moderator": False}, run, now) is None


def test_the_cost_forecast_counts_the_longest_answer_of_the_dearest_bot(tmp_path: Path) -> None:
    table = PriceTable.load()
    usage = TurnUsage(prompt_tokens=1000, completion_tokens=500)
    assert table.cost("openai/gpt-4o-2024-08-06", usage) == pytest.approx(
        (1000 * 2.5 + 500 * 10) / 1e6
    )
    assert table.cost("openai/gpt-4o-mini", usage) == pytest.approx((1000 * 0.15 + 500 * 0.6) / 1e6)
    assert table.cost("local/smollm2", usage) == 0.0
    assert table.cost("openai/never-heard-of", usage) is None
    run = _run_with([Message("assistant", "A", "x" * 400, bot_index=0)])
    run.bots[1] = BotConfig("B", "openai/gpt-4o", "", max_tokens=1000)
    expected = ((1 + 400) // 4 + 1) * 2.5 / 1e6 + 1000 * 10 / 1e6
    assert table.next_turn_at_most(run) == pytest.approx(expected)


def test_a_bad_prices_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"openai/x": {"input": "cheap"}}))
    with pytest.raises(SettingsError, match="PRICES_FILE"):
        load_settings(_env_file=None, prices_file=str(bad))
    bad.write_text("{not json")
    with pytest.raises(SettingsError, match="PRICES_FILE"):
        load_settings(_env_file=None, prices_file=str(bad))


async def test_the_policies_are_listed(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/policies")).json()["items"]
    names = [item["name"] for item in listed]
    assert "round_robin" in names
    assert all(item["description"] for item in listed)
    response = await client.post(
        "/api/run", json={"topic": "t", "bots": _bots(), "policy": "nonesuch"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "policy"

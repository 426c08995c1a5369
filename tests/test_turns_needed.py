"""A run's `max_turns` against what its policy's rounds need: left out, it is raised to fit;
chosen too few, it is refused with the number needed (never overridden in silence)."""

from __future__ import annotations

import httpx
import pytest

from symposia.orchestration.policies import policy_named
from symposia.orchestration.presets import PRESETS

THREE = [{"name": f"Agent {n}", "model": "scripted/echo"} for n in (1, 2, 3)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_gives_the_turns_its_rounds_need(preset: str) -> None:
    body = PRESETS[preset].body
    agents = sum(1 for bot in body.get("bots", [{}, {}]) if bot.get("kind", "bot") == "bot")
    needed = policy_named(body.get("policy", "round_robin")).turns_needed(
        body.get("policy_config", {}), agents
    )
    assert body.get("max_turns", 6) >= needed


@pytest.mark.parametrize(
    ("policy", "config", "needed"),
    [("rounds", {"max_rounds": 2}, 7), ("moderated", {"max_rounds": 4}, 9)],
)
async def test_turns_left_out_are_raised_and_too_few_refused(
    client: httpx.AsyncClient, policy: str, config: dict[str, int], needed: int
) -> None:
    bots = THREE if policy == "rounds" else THREE[:2]
    body = {"topic": "t", "bots": bots, "policy": policy, "policy_config": config}
    left_out = await client.post("/api/run", json=body)
    assert left_out.status_code == 201, left_out.text
    assert left_out.json()["max_turns"] == needed

    too_few = await client.post("/api/run", json={**body, "max_turns": needed - 1})
    assert too_few.status_code == 422
    error = too_few.json()
    assert error["field"] == "max_turns"
    assert f"take {needed} turns" in error["message"]

    enough = await client.post("/api/run", json={**body, "max_turns": needed})
    assert enough.status_code == 201, enough.text


async def test_a_preset_with_turns_too_few_is_refused(client: httpx.AsyncClient) -> None:
    refused = await client.post("/api/run", json={"topic": "t", "preset": "mad", "max_turns": 2})
    assert refused.status_code == 422
    assert refused.json()["field"] == "max_turns"
    kept = await client.post("/api/run", json={"topic": "t", "preset": "mad"})
    assert kept.status_code == 201
    assert kept.json()["max_turns"] == 7

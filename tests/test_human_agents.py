"""Issue 12, people in the loop: an agent of kind `human` makes the run wait (no task, no
lease) until that person speaks or the wait times out; a waiting run survives a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.domain.models import RunStatus
from tests.helpers import wait_done, wait_for_event
from tests.test_takeover import Servers, _events, servers  # noqa: F401 (the fixture)

AGENTS = [{"name": "A", "model": "scripted/echo"}, {"name": "Ana", "kind": "human"}]


async def _start(container: Container, **body: Any) -> str:
    run = await container.runs.create(
        "t",
        [b for b in _configs()],
        body.pop("max_turns", 3),
        owner="dev",
        **body,
    )
    return run.id


def _configs() -> list[Any]:
    from symposia.domain.models import BotConfig

    return [
        BotConfig("A", "scripted/echo", ""),
        BotConfig("Ana", "", "", kind="human"),
    ]


async def _waiting(container: Container, run_id: str) -> None:
    await wait_for_event(container, run_id, lambda e: e.type == "awaiting_input")
    for _ in range(100):
        run = await container.run_repository.get(run_id)
        assert run is not None
        if run.status is RunStatus.AWAITING_INPUT and run_id not in container.runs.tasks.running:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run did not settle into waiting")


async def test_the_run_waits_for_the_person_then_goes_on_with_their_words(
    servers: Servers,  # noqa: F811
) -> None:
    server = await servers()
    run_id = await _start(server)
    await _waiting(server, run_id)
    stored = await server.run_repository.get(run_id)
    assert stored is not None
    assert stored.awaiting_until is not None
    events = await server.log.read(run_id)
    assert [e.type for e in events[-2:]] == ["run_status", "awaiting_input"]
    assert events[-2].data == {"status": "awaiting_input"}
    assert (events[-1].data["bot"], events[-1].data["name"]) == (1, "Ana")

    message = await server.runs.say(run_id, "Consider the cost.", None, caller="x", owner="dev")
    assert (message.author, message.bot_index) == ("Ana", 1)
    events = await wait_done(server, run_id)
    kinds = [e.type for e in events]
    said = kinds.index("person_message")
    assert events[said - 1].data == {"status": "running"}
    assert events[said].data["author"] == "Ana"
    assert kinds[said + 1] == "turn_start"
    done = await server.run_repository.get(run_id)
    assert done is not None
    assert done.status is RunStatus.COMPLETED
    assert [(m.author, m.role) for m in done.messages] == [
        ("A", "assistant"),
        ("Ana", "user"),
        ("A", "assistant"),
    ]
    assert "Ana: Consider the cost." in done.messages[2].content  # echo quotes what it saw


async def test_someone_else_speaking_leaves_the_run_waiting(
    servers: Servers,  # noqa: F811
) -> None:
    server = await servers()
    run_id = await _start(server)
    await _waiting(server, run_id)
    await server.runs.say(run_id, "just a remark", "Bob", caller="x", owner="dev")
    await asyncio.sleep(0.3)
    run = await server.run_repository.get(run_id)
    assert run is not None
    assert run.status is RunStatus.AWAITING_INPUT
    assert [m.author for m in run.messages] == ["A", "Bob"]


@pytest.mark.parametrize("policy", ["end", "skip"])
async def test_the_wait_times_out_as_the_run_says(
    servers: Servers,  # noqa: F811
    policy: str,
) -> None:
    server = await servers(human_timeout_seconds=0.3)
    run_id = await _start(server, on_human_timeout=policy)
    events = await wait_done(server, run_id)
    run = await server.run_repository.get(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    if policy == "end":
        assert run.ended_by == "human_timeout"
        assert events[-1].data == {"status": "completed", "ended_by": "human_timeout"}
        assert [m.author for m in run.messages] == ["A"]
    else:
        assert run.ended_by == "max_turns"
        turns = [(m.author, m.status.value, m.content) for m in run.messages]
        assert turns[1] == ("Ana", "partial", "")  # skipped
        assert [t[0] for t in turns] == ["A", "Ana", "A"]


async def test_a_waiting_run_survives_a_restart(servers: Servers) -> None:  # noqa: F811
    first = await servers()
    run_id = await _start(first)
    await _waiting(first, run_id)
    before = await first.log.read(run_id)
    await servers.stop(first)
    second = await servers()  # the in-memory log died with the first: it is restored
    await second.runs.say(run_id, "Here I am.", "Ana", caller="x", owner="dev")
    events = await _events(second, run_id)  # once the woken run restored its stream
    run = await second.run_repository.get(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert [m.author for m in run.messages] == ["A", "Ana", "A"]
    assert events[-1].seq > before[-1].seq  # numbered on after what viewers saw


async def test_a_waiting_run_can_be_stopped(servers: Servers) -> None:  # noqa: F811
    server = await servers()
    run_id = await _start(server)
    await _waiting(server, run_id)
    stopped = await server.runs.stop(run_id, owner="dev")
    assert stopped.status is RunStatus.CANCELLED
    assert stopped.ended_by == "stop"


async def test_a_human_agent_takes_no_model(client: httpx.AsyncClient) -> None:
    bots = [{"name": "A"}, {"name": "Ana", "kind": "human", "model": "scripted/echo"}]
    response = await client.post("/api/run", json={"topic": "t", "bots": bots})
    assert response.status_code == 422
    ok = await client.post("/api/run", json={"topic": "t", "bots": AGENTS, "max_turns": 1})
    assert ok.status_code == 201, ok.text

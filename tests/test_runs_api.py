"""The run lifecycle through the HTTP API, with the scripted provider."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.events.replay import rebuild
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import tokens_of, wait_done, wait_for_event
from tests.sse import collect

TWO_BOTS = [
    {"name": "Ada", "model": "scripted/echo", "system_prompt": "You are Ada."},
    {"name": "Bert", "model": "scripted/echo", "system_prompt": "You are Bert."},
]


async def _start(client: httpx.AsyncClient, **body: Any) -> str:
    body.setdefault("topic", "Tabs or spaces?")
    body.setdefault("bots", TWO_BOTS)
    response = await client.post("/api/run", json=body)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


async def test_lifecycle_streams_turns_in_order_and_exports(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    run_id = await _start(client, max_turns=4)
    frames = await collect(client, f"/api/stream/{run_id}")

    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    kinds = [f.event for f in frames]
    assert kinds[0] == "run_status"
    assert frames[0].data == {"status": "running"}
    assert kinds[-2:] == ["run_status", "done"]
    assert frames[-1].data == {"status": "completed", "ended_by": "max_turns"}
    starts = [f.data for f in frames if f.event == "turn_start"]
    assert [(s["turn"], s["bot"], s["name"]) for s in starts] == [
        (0, 0, "Ada"),
        (1, 1, "Bert"),
        (2, 0, "Ada"),
        (3, 1, "Bert"),
    ]

    # What each call received: the bot's own turns as assistant, the others' as named users.
    requests = scripted.requests
    assert len(requests) == 4
    assert [(m.role, m.content) for m in requests[0].messages] == [
        ("system", "You are Ada."),
        ("user", "Tabs or spaces?"),
    ]
    completes = [f.data for f in frames if f.event == "turn_complete"]
    first, second = completes[0]["content"], completes[1]["content"]
    assert first == "You said: Tabs or spaces?"
    assert [(m.role, m.content) for m in requests[1].messages] == [
        ("system", "You are Bert."),
        ("user", "Tabs or spaces?"),
        ("user", f"Ada: {first}"),
    ]
    assert [(m.role, m.content) for m in requests[2].messages] == [
        ("system", "You are Ada."),
        ("user", "Tabs or spaces?"),
        ("assistant", first),
        ("user", f"Bert: {second}"),
    ]

    export = (await client.get(f"/api/export/{run_id}.json")).json()
    assert export["status"] == "completed"
    assert [b["name"] for b in export["bots"]] == ["Ada", "Bert"]
    assert [m["content"] for m in export["messages"]] == [c["content"] for c in completes]
    assert all(m["status"] == "complete" for m in export["messages"])
    assert export["messages"][0]["usage"]["completion_tokens"] == 5  # "You said: Tabs or spaces?"
    assert export["created_at"]
    assert export["finished_at"]

    summary = (await client.get(f"/api/run/{run_id}")).json()
    assert summary["status"] == "completed"
    assert summary["turn_count"] == 4
    assert summary["error_message"] is None


async def test_token_frames_concatenate_to_the_saved_message(
    client: httpx.AsyncClient, container: Container
) -> None:
    run_id = await _start(client, max_turns=2)
    events = await wait_done(container, run_id)
    export = (await client.get(f"/api/export/{run_id}.json")).json()
    assert [tokens_of(events, t) for t in (0, 1)] == [m["content"] for m in export["messages"]]


async def test_patch_mid_run_changes_the_very_next_call(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=["a", "b", "c", "d"], delay=0.05))
    bots = [
        {"name": "Ada", "model": "scripted/slow", "system_prompt": "old Ada"},
        {"name": "Bert", "model": "scripted/slow", "system_prompt": "old Bert"},
    ]
    run_id = await _start(client, bots=bots, max_turns=3)
    await wait_for_event(container, run_id, lambda e: e.type == "turn_start")

    response = await client.patch(
        f"/api/run/{run_id}/bot/1", json={"prompt": "new Bert", "temperature": 1.5}
    )
    assert response.status_code == 200, response.text
    assert response.json()["bot"]["system_prompt"] == "new Bert"
    response = await client.patch(f"/api/run/{run_id}/bot/0", json={"max_tokens": 2})
    assert response.status_code == 200

    await wait_done(container, run_id)
    first, second, third = scripted.requests
    assert first.messages[0].content == "old Ada"
    assert first.max_tokens == 256
    assert second.messages[0].content == "new Bert"
    assert second.temperature == 1.5
    assert third.max_tokens == 2


async def test_stop_mid_turn_keeps_partial_text_and_cancels(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["Hello", " wor", "ld"], stall_after=2))
    bots = [{"name": "Ada", "model": "scripted/stall"}, {"name": "Bert", "model": "scripted/echo"}]
    run_id = await _start(client, bots=bots, max_turns=4)
    await wait_for_event(container, run_id, lambda e: e.type == "token" and e.seq >= 4)

    response = await client.post(f"/api/run/{run_id}/stop")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["stop_reason"] == "stopped by user"

    events = await wait_done(container, run_id, timeout=5)
    assert [e.type for e in events[-3:]] == ["turn_complete", "run_status", "done"]
    assert events[-3].data["status"] == "partial"
    assert events[-2].data == {
        "status": "cancelled",
        "reason": "stopped by user",
        "ended_by": "stop",
    }
    export = (await client.get(f"/api/export/{run_id}.json")).json()
    assert export["status"] == "cancelled"
    assert [(m["content"], m["status"]) for m in export["messages"]] == [("Hello wor", "partial")]

    assert (await client.post(f"/api/run/{run_id}/stop")).status_code == 409
    patch = await client.patch(f"/api/run/{run_id}/bot/0", json={"temperature": 1})
    assert patch.status_code == 409
    assert "cancelled" in patch.json()["message"]


async def test_provider_failure_ends_in_error_with_text_kept(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("flaky", Script(chunks=["Half", " a", " thought"], fail_after=2))
    bots = [{"name": "Ada", "model": "scripted/echo"}, {"name": "Bert", "model": "scripted/flaky"}]
    run_id = await _start(client, bots=bots, max_turns=4)
    events = await wait_done(container, run_id)

    error = next(e for e in events if e.type == "error")
    assert set(error.data) >= {
        "code",
        "message",
        "provider",
        "model",
        "status",
        "retryable",
        "suggestion",
    }
    assert error.data["provider"] == "scripted"
    assert events[-1].data == {"status": "error"}
    summary = (await client.get(f"/api/run/{run_id}")).json()
    assert summary["status"] == "error"
    assert summary["error_message"] == "the scripted model failed on purpose"
    export = (await client.get(f"/api/export/{run_id}.json")).json()
    assert [(m["author"], m["content"], m["status"]) for m in export["messages"]] == [
        ("Ada", "You said: Tabs or spaces?", "complete"),
        ("Bert", "Half a", "partial"),
    ]


async def test_default_bots_when_none_are_given(
    client: httpx.AsyncClient, container: Container
) -> None:
    response = await client.post("/api/run", json={"topic": "Cats or dogs?", "max_turns": 2})
    assert response.status_code == 201
    summary = (await client.get(f"/api/run/{response.json()['id']}")).json()
    bots = summary["bots"]
    assert len(bots) == 2
    assert {b["model"] for b in bots} == {container.settings.default_model}
    assert bots[0]["system_prompt"] != bots[1]["system_prompt"]
    assert all(b["system_prompt"] for b in bots)


async def test_aliases_provider_and_prompt(client: httpx.AsyncClient) -> None:
    bots = [
        {"name": "A", "provider": "scripted", "model": "echo", "prompt": "be brief"},
        {"name": "B", "model": "scripted/count", "max_tokens": 3},
    ]
    run_id = await _start(client, bots=bots, max_turns=1)
    summary = (await client.get(f"/api/run/{run_id}")).json()
    assert summary["bots"][0]["model"] == "scripted/echo"
    assert summary["bots"][0]["system_prompt"] == "be brief"
    assert summary["bots"][1]["max_tokens"] == 3


async def test_max_turns_is_capped_by_the_setting(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.runs.max_turns_cap = 3
    response = await client.post("/api/run", json={"topic": "x", "bots": TWO_BOTS, "max_turns": 50})
    assert response.json()["max_turns"] == 3
    events = await wait_done(container, response.json()["id"])
    assert sum(e.type == "turn_start" for e in events) == 3


async def test_runs_are_listed_newest_first(client: httpx.AsyncClient) -> None:
    first = await _start(client, max_turns=1)
    second = await _start(client, max_turns=1)
    items = (await client.get("/api/runs")).json()["items"]
    assert [item["id"] for item in items][:2] == [second, first]


BAD_BODIES = [
    ({"topic": "x", "bots": TWO_BOTS[:1]}, "bots"),
    ({"topic": "x", "bots": [dict(TWO_BOTS[0], name=f"b{i}") for i in range(9)]}, "bots"),
    ({"topic": "   ", "bots": TWO_BOTS}, "topic"),
    ({"bots": TWO_BOTS}, "topic"),
    (
        {"topic": "x", "bots": [dict(TWO_BOTS[0], temperature=2.5), TWO_BOTS[1]]},
        "bots.0.temperature",
    ),
    (
        {"topic": "x", "bots": [TWO_BOTS[0], dict(TWO_BOTS[1], temperature=-0.1)]},
        "bots.1.temperature",
    ),
    ({"topic": "x", "bots": TWO_BOTS, "max_turns": 0}, "max_turns"),
    ({"topic": "x", "bots": [dict(TWO_BOTS[0], model="nope/x"), TWO_BOTS[1]]}, "bots.0.model"),
    ({"topic": "x", "bots": [TWO_BOTS[0], dict(TWO_BOTS[1], model="local/gpt-5")]}, "bots.1.model"),
    (
        {"topic": "x", "bots": [TWO_BOTS[0], dict(TWO_BOTS[1], model="scripted/nope")]},
        "bots.1.model",
    ),
    ({"topic": "x", "bots": [dict(TWO_BOTS[0], model="gpt-4o"), TWO_BOTS[1]]}, "bots.0.model"),
    (
        {"topic": "x", "bots": [dict(TWO_BOTS[0], max_tokens=10**6), TWO_BOTS[1]]},
        "bots.0.max_tokens",
    ),
    ({"topic": "x", "bots": [TWO_BOTS[0], dict(TWO_BOTS[0])]}, "body"),
    (
        {
            "topic": "x",
            "bots": [dict(TWO_BOTS[0], provider="local", model="openai/x"), TWO_BOTS[1]],
        },
        "bots.0",
    ),
    ({"topic": "x", "bots": "two"}, "bots"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_run_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/run", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["field"] == field
    assert payload["message"]


async def test_malformed_json_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/run", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/run/{id}"),
        ("POST", "/api/run/{id}/stop"),
        ("GET", "/api/stream/{id}"),
        ("GET", "/api/export/{id}.json"),
        ("PATCH", "/api/run/{id}/bot/0"),
    ],
)
async def test_unknown_run_is_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {"temperature": 1}} if method == "PATCH" else {}
    response = await client.request(method, path.format(id="missing"), **kwargs)
    assert response.status_code == 404
    assert "missing" in response.json()["message"]


@pytest.mark.parametrize("index", [2, 7, -1])
async def test_bot_index_out_of_range_is_404(client: httpx.AsyncClient, index: int) -> None:
    run_id = await _start(client, max_turns=1)
    response = await client.patch(f"/api/run/{run_id}/bot/{index}", json={"temperature": 1})
    assert response.status_code == 404
    assert f"no bot {index}" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"temperature": 3}, 422),
        ({"model": "nope/x"}, 422),
        ({"max_tokens": 0}, 422),
        ({"max_tokens": 10**7}, 422),
    ],
)
async def test_bad_patches(
    client: httpx.AsyncClient, scripted: ScriptedProvider, body: dict[str, Any], status: int
) -> None:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    run_id = await _start(
        client,
        bots=[{"name": "A", "model": "scripted/stall"}, {"name": "B", "model": "scripted/stall"}],
    )
    response = await client.patch(f"/api/run/{run_id}/bot/0", json=body)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 40, "٣"])
async def test_malformed_last_event_id_is_400(client: httpx.AsyncClient, value: str) -> None:
    run_id = await _start(client, max_turns=1)
    header = value.encode()  # raw bytes: a non-ASCII digit must not pass as a number
    response = await client.get(f"/api/stream/{run_id}", headers={"Last-Event-ID": header})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["message"]
    response = await client.get(f"/api/stream/{run_id}", params={"last_event_id": value})
    assert response.status_code == 400


async def test_health_lists_providers(client: httpx.AsyncClient) -> None:
    body = (await client.get("/health")).json()
    assert body["status"] == "ok"
    assert body["providers"]["scripted"] is True
    assert "local" in body["providers"]


async def test_a_turn_that_reached_its_length_keeps_whole_sentences(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    """Issue 26: a turn stopped by max_tokens mid-sentence is kept to its last sentence
    end, marked `finish_reason: length`; one that ended itself is kept whole."""
    chunks = ["Cars pollute.", " They kill.", " And the"]
    scripted.add_script("cut", Script(chunks=chunks, finish_reason="length"))
    scripted.add_script("whole", Script(chunks=chunks))
    bots = [{"name": "Ada", "model": "scripted/cut"}, {"name": "Bert", "model": "scripted/whole"}]
    run_id = await _start(client, bots=bots, max_turns=2)
    events = await wait_done(container, run_id)
    ended = [e.data for e in events if e.type == "turn_complete"]
    assert [(d["content"], d.get("finish_reason")) for d in ended] == [
        ("Cars pollute. They kill.", "length"),
        ("Cars pollute. They kill. And the", None),
    ]
    assert tokens_of(events, 0) == "".join(chunks)  # streamed as the model wrote it
    export = (await client.get(f"/api/export/{run_id}.json")).json()
    assert export["messages"][0]["content"] == "Cars pollute. They kill."
    # The stream rebuilt from storage (its live log gone) tells the same.
    stored = await container.run_repository.get(run_id)
    assert stored is not None
    rebuilt = [e.data for e in rebuild(stored).events if e.type == "turn_complete"]
    assert rebuilt == ended


async def test_runs_listed_by_the_start_of_their_id(client: httpx.AsyncClient) -> None:
    """`id_prefix` (the terminal client resolving an id a person typed in one request)."""
    first, second = await _start(client, max_turns=1), await _start(client, max_turns=1)
    page = (await client.get("/api/runs", params={"id_prefix": first[:6]})).json()
    assert [run["id"] for run in page["items"]] == [first]
    assert page["id_prefix"] == first[:6]  # said back: a client knows it was applied
    both = (await client.get("/api/runs", params={"id_prefix": ""})).json()
    assert {first, second} <= {run["id"] for run in both["items"]}
    assert "id_prefix" not in both
    for wrong in ("ab%", "AB12", "a" * 33):  # only what an id may start with
        response = await client.get("/api/runs", params={"id_prefix": wrong})
        assert response.status_code == 422, wrong

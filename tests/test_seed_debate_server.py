"""Seed 000, the two-bot debate server: its API table, tried as its front end does
(docs/seeds.md). Its stream is read on `EventSource.onmessage` (unnamed frames, `data.type`)
and its frames are `{"type": "token", "role": "bot0", "delta"}`, `{"type":
"turn_complete", "turn"}` and `{"type": "error", "message"}`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import default_providers
from symposia.providers.scripted import Script, ScriptedProvider
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer
from tests.helpers import wait_done, wait_for_event
from tests.sse import Frame, collect

TWO_BOTS = {
    "topic": "Is a hot dog a sandwich?",
    "max_turns": 2,
    "bots": [
        {"name": "Pro", "model": "scripted/pro", "system_prompt": "Argue yes."},
        {"name": "Con", "model": "scripted/con", "system_prompt": "Argue no."},
    ],
}


@pytest.fixture(autouse=True)
def _scripts(scripted: ScriptedProvider) -> None:
    scripted.add_script("pro", Script(chunks=["Yes", ", it", " is."]))
    scripted.add_script("con", Script(chunks=["No", "."]))


async def _run(client: httpx.AsyncClient, body: dict[str, object] = TWO_BOTS) -> str:
    response = await client.post("/api/run", json=body)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


async def test_unnamed_stream_is_the_seeds_frames_for_onmessage(
    client: httpx.AsyncClient,
) -> None:
    run_id = await _run(client)
    frames = await collect(client, f"/api/stream/{run_id}?events=unnamed")
    assert frames
    assert all(f.event is None for f in frames)
    tokens = [f.data for f in frames if f.data["type"] == "token"]
    assert [t["role"] for t in tokens] == ["bot0"] * 3 + ["bot1"] * 2
    assert "".join(t["delta"] for t in tokens if t["role"] == "bot0") == "Yes, it is."
    assert "".join(t["delta"] for t in tokens if t["role"] == "bot1") == "No."
    completes = [f.data for f in frames if f.data["type"] == "turn_complete"]
    assert [c["turn"] for c in completes] == [0, 1]
    assert all(f.id is not None for f in frames)  # still resumable by Last-Event-ID


async def test_named_stream_data_carries_its_event_name(client: httpx.AsyncClient) -> None:
    run_id = await _run(client)
    frames = await collect(client, f"/api/stream/{run_id}")
    assert frames
    assert all(f.event is not None for f in frames)
    assert all(f.wire["type"] == f.event for f in frames)
    assert {f.wire["role"] for f in frames if f.event == "token"} == {"bot0", "bot1"}


async def test_a_provider_failure_is_the_seeds_error_frame(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("pro", Script(chunks=["x"], fail_after=0))
    run_id = await _run(client)
    frames: list[Frame] = await collect(client, f"/api/stream/{run_id}?events=unnamed")
    errors = [f.data for f in frames if f.data["type"] == "error"]
    assert errors
    assert isinstance(errors[0]["message"], str)
    assert errors[0]["message"]


async def test_the_api_table_patch_stop_export_health(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = {**TWO_BOTS, "max_turns": 6}
    run_id = await _run(client, body)
    patched = await client.patch(
        f"/api/run/{run_id}/bot/1", json={"prompt": "Concede.", "temperature": 1.1}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["bot"]["temperature"] == 1.1
    assert patched.json()["bot"]["system_prompt"] == "Concede."
    await wait_for_event(container_of(app), run_id, lambda e: e.type == "turn_complete")
    stopped = await client.post(f"/api/run/{run_id}/stop")
    assert stopped.status_code in (200, 409)  # 409: it had already finished
    await wait_done(container_of(app), run_id)
    export = await client.get(f"/api/export/{run_id}.json")
    assert export.status_code == 200
    assert export.json()["messages"]
    assert (await client.get("/health")).status_code == 200


@pytest.fixture
async def anthropic_api(fake_provider: FakeProviderServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = remote_settings(fake_provider)
    providers = default_providers(settings)
    providers.register(ScriptedProvider(token_delay=0))
    application = create_app(settings, providers)
    await container_of(application).start()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c
    await container_of(application).shutdown()


async def test_temperature_on_an_anthropic_bot_is_refused_by_name(
    anthropic_api: httpx.AsyncClient,
) -> None:
    """Anthropic's Messages API (SDK 2.x) takes no temperature: a PATCH that sets one is
    refused, naming the provider, rather than stored and never sent."""
    body = {
        "topic": "t",
        "max_turns": 20,
        "bots": [
            {"name": "Claude", "model": "anthropic/claude-haiku-4-5"},
            {"name": "Echo", "model": "scripted/echo"},
        ],
    }
    run_id = (await anthropic_api.post("/api/run", json=body)).json()["id"]
    refused = await anthropic_api.patch(f"/api/run/{run_id}/bot/0", json={"temperature": 0.2})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "temperature"
    assert "anthropic" in refused.json()["message"]
    allowed = await anthropic_api.patch(f"/api/run/{run_id}/bot/1", json={"temperature": 0.2})
    assert allowed.status_code == 200, allowed.text
    await anthropic_api.post(f"/api/run/{run_id}/stop")

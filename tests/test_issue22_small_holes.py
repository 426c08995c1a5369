"""Issue 22, point 8: the smaller holes of the front door.

A run refused by the running-runs cap used up the runs-per-minute budget; `/v1` ignored
MAX_MESSAGE_CHARS; HTTP Basic had no failed-attempt limit; the page could be framed and
downloads could be sniffed; a malformed body was named by its character offset; unknown
fields of `/api` bodies were dropped in silence.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.container import Container
from symposia.providers.scripted import Script, ScriptedProvider
from tests.fakes.redis_server import REDIS_URL, require_redis
from tests.helpers import wait_done
from tests.test_security import PASSWORD, _key, http, secure, secure_app, secure_overrides

__all__ = ["http", "secure", "secure_app", "secure_overrides"]  # fixtures used here

BOTS = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
STALLING = [{"name": "A", "model": "scripted/stall"}, {"name": "B", "model": "scripted/stall"}]
CAPPED = {"max_concurrent_runs_per_principal": 1, "rate_limit_runs": "3/minute"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def redis_limits(request: pytest.FixtureRequest) -> None:
    if "redis_url" in request.getfixturevalue("secure_overrides"):
        await require_redis()


@pytest.mark.usefixtures("redis_limits")
@pytest.mark.parametrize(
    "secure_overrides", [CAPPED, {**CAPPED, "redis_url": REDIS_URL}], ids=["memory", "redis"]
)
async def test_runs_refused_by_the_running_cap_do_not_use_the_rate_budget(
    http: httpx.AsyncClient, secure: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("stall", Script(chunks=["x"], stall_after=0))
    alice = await _key(secure)
    first = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": STALLING})
    assert first.status_code == 201
    for _ in range(5):
        refused = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": BOTS})
        assert refused.status_code == 429
        assert "MAX_CONCURRENT_RUNS_PER_PRINCIPAL" in refused.json()["message"]
    await http.post(f"/api/run/{first.json()['id']}/stop", headers=alice)
    # Two admitted runs of three allowed: room for one more, then the rate limit.
    second = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": BOTS})
    assert second.status_code == 201, second.text
    await wait_done(secure, second.json()["id"])
    third = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": BOTS})
    assert third.status_code == 201, third.text
    await wait_done(secure, third.json()["id"])
    over = await http.post("/api/run", headers=alice, json={"topic": "t", "bots": BOTS})
    assert over.status_code == 429
    assert "rate limit" in over.json()["message"]


async def test_v1_refuses_a_message_over_max_message_chars(
    client: httpx.AsyncClient, container: Container
) -> None:
    long = "x" * (container.settings.max_message_chars + 1)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": long}]
    chat = await client.post(
        "/v1/chat/completions", json={"model": "scripted/echo", "messages": messages}
    )
    assert chat.status_code == 413, chat.text
    error = chat.json()["error"]
    assert error["param"] == "messages.1.content"
    assert "MAX_MESSAGE_CHARS" in error["message"]
    for body, param in (
        ({"input": long}, "input"),
        (
            {"input": [{"role": "user", "content": "hi"}, {"role": "user", "content": long}]},
            "input.1",
        ),
        ({"input": "hi", "instructions": long}, "instructions"),
    ):
        response = await client.post("/v1/responses", json={"model": "scripted/echo", **body})
        assert response.status_code == 413, response.text
        assert response.json()["error"]["param"] == param


def _from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://symposia.test")


@pytest.mark.parametrize("secure_overrides", [{"rate_limit_signin": "3/minute"}])
async def test_http_basic_failures_are_limited_per_client_and_per_user(
    secure_app: FastAPI,
) -> None:
    async with _from(secure_app, "10.0.0.1") as one:
        codes = [(await one.get("/api/runs", headers=basic("alice", "wrong"))).status_code]
        codes += [
            (await one.get("/api/runs", headers=basic(f"u{i}", "x"))).status_code for i in range(3)
        ]
        assert codes == [401, 401, 401, 429]  # per client, whatever the user name
        refused = await one.get("/api/runs", headers=basic("alice", PASSWORD))
        assert refused.status_code == 429  # not even the right password, until it clears
        assert int(refused.headers["retry-after"]) >= 1
    for address in ("10.0.0.2", "10.0.0.3"):
        async with _from(secure_app, address) as other:
            wrong = await other.get("/api/runs", headers=basic("alice", "wrong"))
            assert wrong.status_code == 401
    async with _from(secure_app, "10.0.0.4") as fresh:
        # alice has failed three times, from three clients: her name is limited now.
        assert (await fresh.get("/api/runs", headers=basic("alice", PASSWORD))).status_code == 429
        assert (await fresh.get("/api/runs", headers=basic("bob", "x"))).status_code == 401
        # The sign-in form applies the same limit to the same user name.
        page = await fresh.get("/signin")
        token = page.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
        form = {"method": "basic", "form_token": token, "username": "alice", "password": PASSWORD}
        assert (await fresh.post("/auth/signin", data=form)).status_code == 429


@pytest.mark.parametrize("secure_overrides", [{"rate_limit_signin": "3/minute"}])
async def test_right_basic_passwords_are_not_counted(secure_app: FastAPI) -> None:
    async with _from(secure_app, "10.0.0.9") as one:
        for _ in range(6):
            assert (await one.get("/api/runs", headers=basic("alice", PASSWORD))).status_code == 200


async def test_the_page_may_not_be_framed_and_runs_only_its_own_scripts(
    client: httpx.AsyncClient, container: Container
) -> None:
    page = await client.get("/", headers={"Accept": "text/html"})
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    run = (await client.post("/api/run", json={"topic": "t", "bots": BOTS, "max_turns": 1})).json()
    await wait_done(container, run["id"])
    for fmt in ("json", "md"):
        download = await client.get(f"/api/export/{run['id']}.{fmt}")
        assert download.headers["x-content-type-options"] == "nosniff"


async def test_a_malformed_body_is_named_as_the_body(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    api = await client.post("/api/run", content=b'{"topic": x}', headers=headers)
    assert api.status_code == 422
    assert api.json()["field"] == "body"
    assert "character 10" in api.json()["message"]
    v1 = await client.post("/v1/chat/completions", content=b'{"model": x}', headers=headers)
    assert v1.status_code == 400
    assert v1.json()["error"]["param"] is None  # the body as a whole is no parameter
    assert "not valid JSON" in v1.json()["error"]["message"]


UNKNOWN: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "bot",
        "/api/run",
        {"topic": "t", "bots": [{**BOTS[0], "toolbox": []}, BOTS[1]]},
        "bots.0.toolbox",
    ),
    (
        "max_rounds beside policy",
        "/api/run",
        {"topic": "t", "policy": "rounds", "max_rounds": 2},
        "max_rounds",
    ),
    ("conversation", "/api/conversations", {"title": "t", "color": "red"}, "color"),
    (
        "panel agent",
        "/api/conversations",
        {
            "panel": {
                "agents": [
                    {"name": "a", "description": "d", "model": "scripted/echo", "toolbox": []}
                ]
            }
        },
        "panel.agents.0.toolbox",
    ),
    ("chat", "/api/chat/stream", {"message": "hi", "temperature": 0.2}, "temperature"),
]


@pytest.mark.parametrize(("name", "path", "body", "field"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
async def test_unknown_fields_of_api_bodies_are_refused_naming_them(
    client: httpx.AsyncClient, name: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (await client.get("/api/runs")).json()["items"] == []
    assert (await client.get("/api/conversations")).json()["items"] == []


async def test_v1_bodies_still_ignore_what_openai_clients_send(client: httpx.AsyncClient) -> None:
    body = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
    response = await client.post("/v1/chat/completions", json={**body, "logit_bias": {}})
    assert response.status_code == 200, response.text

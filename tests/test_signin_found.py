"""What a real browser and Swagger UI found: cross-origin credentials, the 401 challenge,
the OpenAPI security schemes, and how a finished stream tells EventSource to stop."""

from __future__ import annotations

import httpx
import pytest

from symposia.container import Container
from symposia.settings import SettingsError, load_settings
from symposia.streaming.sse import RETRY_MILLISECONDS
from tests.helpers import wait_done
from tests.sse import collect
from tests.test_security import (  # noqa: F401 (fixtures)
    PASSWORD,
    basic,
    http,
    secure,
    secure_app,
    secure_overrides,
)
from tests.test_sessions import csrf, database_url, sign_in  # noqa: F401 (a fixture)

ORIGIN = "http://page.example"


# 1. A cross-origin EventSource can send the session cookie -----------------------------


@pytest.mark.parametrize("secure_overrides", [{"cors_origins": [ORIGIN]}])
async def test_listed_origins_may_send_the_session_cookie(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    preflight = await http.options(
        "/api/runs",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["access-control-allow-credentials"] == "true"
    response = await http.get("/api/runs", headers={"Origin": ORIGIN})
    assert response.status_code == 200  # the cookie authenticated it
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("secure_overrides", [{"cors_origins": ["*"]}])
async def test_any_origin_never_gets_credentials(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    response = await http.get("/health", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_cors_credentials_follow_the_origins() -> None:
    assert load_settings(_env_file=None, cors_origins="https://a.example").cors_credentials
    assert not load_settings(_env_file=None, cors_origins="*").cors_credentials
    assert not load_settings(_env_file=None).cors_credentials


# 2. A key-only server does not ask for Basic -------------------------------------------


@pytest.mark.parametrize(
    "secure_overrides", [{"basic_auth_user": None, "basic_auth_pw_hash": None}]
)
async def test_a_key_only_server_challenges_with_bearer(
    http: httpx.AsyncClient,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    await secure.api_keys.create("k")
    for headers in ({}, {"X-API-Key": "sym_nope"}, basic("alice", PASSWORD)):
        response = await http.get("/api/runs", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_a_server_with_a_basic_user_challenges_with_basic(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    response = await http.get("/api/runs")
    assert response.headers["www-authenticate"].startswith("Basic ")
    # A page's own fetch or EventSource gets no Basic challenge: a browser would answer it
    # with a login dialog over the page (it signs in at /signin instead).
    for mode in ("cors", "same-origin", "no-cors"):
        scripted = await http.get("/api/runs", headers={"Sec-Fetch-Mode": mode})
        assert scripted.status_code == 401
        assert scripted.headers["www-authenticate"].startswith("Bearer "), mode
    navigated = await http.get("/api/runs", headers={"Sec-Fetch-Mode": "navigate"})
    assert navigated.headers["www-authenticate"].startswith("Basic ")


# 3. /docs has an Authorize button, and its requests work ------------------------------


async def test_openapi_declares_how_to_authenticate(
    http: httpx.AsyncClient,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    schema = (await http.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header"}
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    assert (schemes["Bearer"]["scheme"], schemes["Basic"]["scheme"]) == ("bearer", "basic")
    assert (schemes["Session"]["in"], schemes["Session"]["name"]) == ("cookie", "symposia_session")
    protected = [
        (method, path, operation)
        for path, operations in schema["paths"].items()
        if path.startswith(("/api/", "/v1/"))
        for method, operation in operations.items()
    ]
    assert len(protected) > 20
    for method, path, operation in protected:
        assert {"ApiKey": []} in operation.get("security", []), (method, path)
    assert "security" not in schema["paths"]["/health"]["get"]
    # What Swagger UI sends once authorized with a key: the scheme's header.
    _, key = await secure.api_keys.create("docs")
    runs = schema["paths"]["/api/runs"]["get"]
    assert {"ApiKey": []} in runs["security"]
    response = await http.get("/api/runs", headers={schemes["ApiKey"]["name"]: key})
    assert response.status_code == 200


# 4. A finished stream's reconnection is told to stop ---------------------------------


async def test_a_finished_runs_reconnection_gets_204(
    http: httpx.AsyncClient,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    auth = basic("alice", PASSWORD)
    created = await http.post("/api/run", json={"topic": "tea", "max_turns": 1}, headers=auth)
    run_id = created.json()["id"]
    await wait_done(secure, run_id)
    path = f"/api/stream/{run_id}"
    async with http.stream("GET", path, headers=auth) as response:
        first = await response.aiter_lines().__anext__()
    assert first == f"retry: {RETRY_MILLISECONDS}"
    frames = await collect(http, path, headers=auth)
    last = frames[-1]
    assert last.event == "done"
    at_done = await http.get(path, headers={**auth, "Last-Event-ID": str(last.seq)})
    assert at_done.status_code == 204
    assert at_done.content == b""
    past = await http.get(path, headers={**auth, "Last-Event-ID": str(last.seq + 5)})
    assert past.status_code == 204
    before = await collect(http, path, headers={**auth, "Last-Event-ID": str(last.seq - 1)})
    assert [f.event for f in before] == ["done"]


async def test_a_finished_replys_reconnection_gets_204(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    token = await csrf(http)
    created = await http.post(
        "/api/conversations", json={"default_model": "scripted/echo"}, headers=token
    )
    conversation = created.json()["id"]
    sent = await http.post(
        f"/api/conversations/{conversation}/messages", json={"message": "hi"}, headers=token
    )
    assert sent.status_code == 201
    path = f"/api/conversations/{conversation}/stream"
    frames = await collect(http, path)  # the cookie session, as an EventSource sends it
    assert frames[-1].event == "done"
    again = await http.get(path, headers={"Last-Event-ID": str(frames[-1].seq)})
    assert again.status_code == 204


def test_oidc_needs_all_three_settings() -> None:
    with pytest.raises(SettingsError, match="OIDC_CLIENT_SECRET"):
        load_settings(_env_file=None, oidc_issuer="https://id.example", oidc_client_id="x")

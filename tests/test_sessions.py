"""Browser sessions over HTTP: the sign-in form, the cookie, CSRF, sign-out, revocation."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.security import session_store
from symposia.security.passwords import hash_password
from symposia.security.sessions import COOKIE_NAME, shared_secret
from tests.conftest import make_settings
from tests.test_security import (  # noqa: F401 (fixtures)
    PASSWORD,
    PASSWORD_HASH,
    http,
    secure,
    secure_app,
    secure_overrides,
    secure_settings,
)

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
RUN = {"topic": "tea", "max_turns": 1}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One database is enough for sessions (test_security runs both)."""
    return f"sqlite:///{tmp_path / 'symposia.db'}"


async def sign_in(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """The sign-in form as a browser posts it: the page first, for its form token."""
    page = await client.get("/signin", params={"next": fields.pop("next", "/")})
    match = TOKEN.search(page.text)
    assert match is not None, page.text
    form = {"form_token": match.group(1), "next": page.url.params["next"], **fields}
    return await client.post("/auth/signin", data=form)


async def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    token = (await client.get("/auth/session")).json()["csrf_token"]
    assert token
    return {"X-CSRF-Token": token}


async def test_basic_sign_in_sets_a_safe_cookie_and_authenticates(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    assert (await http.get("/api/runs")).status_code == 401
    response = await sign_in(
        http, method="basic", username="alice", password=PASSWORD, next="/runs/x?a=1"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/runs/x?a=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert (await http.get("/api/runs")).status_code == 200
    session = (await http.get("/auth/session")).json()
    assert session["signed_in"] is True
    assert session["principal"] == {"id": "user:alice", "kind": "basic", "name": "alice"}
    assert session["methods"] == ["basic", "api_key"]
    assert PASSWORD not in str(http.cookies)


async def test_a_wrong_password_shows_the_page_again_with_401(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    response = await sign_in(http, method="basic", username="alice", password="wrong")
    assert response.status_code == 401
    assert "Invalid username or password." in response.text
    assert 'value="alice"' in response.text  # kept for the next try; the password is not
    assert "wrong" not in response.text
    assert (await http.get("/api/runs")).status_code == 401
    assert (await http.get("/auth/session")).json()["signed_in"] is False


async def test_a_form_without_its_token_is_refused(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    """Login CSRF: another site's form cannot sign a visitor in (it has no form token)."""
    fields = {"method": "basic", "username": "alice", "password": PASSWORD}
    response = await http.post("/auth/signin", data={**fields, "form_token": "forged"})
    assert response.status_code == 403
    assert (await http.get("/api/runs")).status_code == 401


async def test_changes_made_with_the_cookie_need_the_csrf_token(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    refused = await http.post("/api/run", json=RUN)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert "X-CSRF-Token" in refused.json()["message"]
    wrong = await http.post("/api/run", json=RUN, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    accepted = await http.post("/api/run", json=RUN, headers=await csrf(http))
    assert accepted.status_code == 201
    run_id = accepted.json()["id"]
    assert (await http.get(f"/api/run/{run_id}")).status_code == 200  # reads need none


async def test_header_credentials_need_no_csrf_token_and_win_over_the_cookie(
    http: httpx.AsyncClient,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    _, key = await secure.api_keys.create("laptop")
    response = await http.post("/api/run", json=RUN, headers={"X-API-Key": key})
    assert response.status_code == 201
    run_id = response.json()["id"]
    # The run is the key's, not the session's (alice): alice cannot see it.
    assert (await http.get(f"/api/run/{run_id}")).status_code == 404
    assert (await http.get(f"/api/run/{run_id}", headers={"X-API-Key": key})).status_code == 200


async def test_sign_out_needs_the_token_and_ends_the_session(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    assert (await http.post("/auth/signout")).status_code == 403
    assert (await http.get("/api/runs")).status_code == 200
    assert (await http.post("/auth/signout", headers=await csrf(http))).status_code == 204
    assert (await http.get("/api/runs")).status_code == 401
    assert (await http.get("/auth/session")).json() == {
        "signed_in": False,
        "principal": None,
        "csrf_token": None,
        "csrf_header": "X-CSRF-Token",
        "methods": ["basic", "api_key"],
    }


async def test_an_api_key_session_ends_when_the_key_is_revoked(
    http: httpx.AsyncClient,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    info, key = await secure.api_keys.create("browser")
    response = await sign_in(http, method="api_key", api_key=key)
    assert response.status_code == 303
    assert key not in response.headers["set-cookie"]
    session = (await http.get("/auth/session")).json()
    assert session["principal"] == {"id": f"key:{info.id}", "kind": "api_key", "name": info.id}
    created = await http.post("/api/run", json=RUN, headers=await csrf(http))
    assert created.status_code == 201
    assert await secure.api_keys.revoke(info.id)
    response = await http.get("/api/runs")
    assert response.status_code == 401
    assert COOKIE_NAME in response.headers.get("set-cookie", "")  # the cookie is deleted
    assert (await http.get("/auth/session")).json()["signed_in"] is False


async def test_an_invalid_key_is_refused(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    response = await sign_in(http, method="api_key", api_key="sym_000000000000_" + "x" * 43)
    assert response.status_code == 401
    assert "Invalid API key." in response.text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\tx",
    ],
)
async def test_next_cannot_lead_to_another_site(
    http: httpx.AsyncClient,  # noqa: F811
    target: str,
) -> None:
    response = await sign_in(http, method="basic", username="alice", password=PASSWORD, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_tampered_cookie_is_refused(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    value = http.cookies[COOKIE_NAME]
    payload, _, rest = value.partition(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + rest
    http.cookies.set(COOKIE_NAME, forged, domain="symposia.test")
    assert (await http.get("/api/runs")).status_code == 401
    http.cookies.set(COOKIE_NAME, "e30=.garbage", domain="symposia.test")
    assert (await http.get("/api/runs")).status_code == 401


@pytest.mark.parametrize("secure_overrides", [{"rate_limit_signin": "2/minute"}])
async def test_sign_in_attempts_are_rate_limited(
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    for _ in range(2):
        response = await sign_in(http, method="basic", username="alice", password="wrong")
        assert response.status_code == 401
    limited = await sign_in(http, method="basic", username="alice", password=PASSWORD)
    assert limited.status_code == 429
    assert "retry-after" in limited.headers


def test_workers_share_one_random_secret_unless_one_is_set() -> None:
    """`serve --workers N` pickles one secret to every worker: a session made by one is
    honoured by the others."""
    unset = make_settings()
    shared = shared_secret(unset)
    assert shared.session_secret is not None
    assert len(shared.session_secret.get_secret_value()) >= 32
    assert shared_secret(shared) is shared
    assert shared_secret(make_settings()).session_secret != shared.session_secret


# --- server-side sessions: revocation, listing, expiry (issue 22 point 4) ----------------


def _browser(app: FastAPI, cookie: str | None = None) -> httpx.AsyncClient:
    """Another browser (or a thief) on the same server, with this cookie if given."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://symposia.test"
    )
    if cookie is not None:
        client.cookies.set(COOKIE_NAME, cookie, domain="symposia.test")
    return client


async def test_a_cookie_copied_before_sign_out_no_longer_works_after(
    http: httpx.AsyncClient,  # noqa: F811
    secure_app: FastAPI,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    copied = http.cookies[COOKIE_NAME]
    async with _browser(secure_app, copied) as thief:
        assert (await thief.get("/api/runs")).status_code == 200
        assert (await http.post("/auth/signout", headers=await csrf(http))).status_code == 204
        assert (await thief.get("/api/runs")).status_code == 401
        assert (await thief.get("/auth/session")).json()["signed_in"] is False


async def test_a_cookie_copied_before_a_password_change_no_longer_works_after(
    database_url: str, scripted: ScriptedProvider
) -> None:
    """The server restarted with a new BASIC_AUTH_PW_HASH (same user, same SESSION_SECRET):
    sessions made with the old password end."""
    common = {"session_secret": "s" * 32}
    before = create_app(secure_settings(database_url, **common), ProviderRegistry([scripted]))
    await container_of(before).start()
    try:
        async with _browser(before) as browser:
            await sign_in(browser, method="basic", username="alice", password=PASSWORD)
            copied = browser.cookies[COOKIE_NAME]
            assert (await browser.get("/api/runs")).status_code == 200
    finally:
        await container_of(before).shutdown()
    for pw_hash, works in ((PASSWORD_HASH, True), (hash_password("new one", rounds=4), False)):
        settings = secure_settings(database_url, basic_auth_pw_hash=pw_hash, **common)
        after = create_app(settings, ProviderRegistry([scripted]))
        await container_of(after).start()
        try:
            async with _browser(after, copied) as thief:
                status = (await thief.get("/api/runs")).status_code
        finally:
            await container_of(after).shutdown()
        assert status == (200 if works else 401), works


async def test_sessions_are_listed_and_ended_by_their_principal(
    http: httpx.AsyncClient,  # noqa: F811
    secure_app: FastAPI,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    async with _browser(secure_app) as phone:
        await sign_in(phone, method="basic", username="alice", password=PASSWORD)
        listed = (await http.get("/api/sessions")).json()["items"]
        assert len(listed) == 2
        assert [s["current"] for s in listed].count(True) == 1
        other = next(s["id"] for s in listed if not s["current"])
        assert {"id", "kind", "created_at", "last_seen", "expires_at"} <= set(listed[0])
        _, key = await secure.api_keys.create("bob")
        bob = {"X-API-Key": key}
        assert (await http.get("/api/sessions", headers=bob)).json()["items"] == []
        assert (await http.delete(f"/api/sessions/{other}", headers=bob)).status_code == 404
        assert (await phone.get("/api/runs")).status_code == 200
        ended = await http.delete(f"/api/sessions/{other}", headers=await csrf(http))
        assert ended.status_code == 204
        assert (await phone.get("/api/runs")).status_code == 401
        assert (await http.get("/api/runs")).status_code == 200
        again = await http.delete(f"/api/sessions/{other}", headers=await csrf(http))
        assert again.status_code == 404
        assert len((await http.get("/api/sessions")).json()["items"]) == 1


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "secure_overrides",
    [{"session_max_age_seconds": 60, "session_absolute_max_age_seconds": 120}],
)
async def test_sessions_slide_with_use_up_to_an_absolute_cap(
    http: httpx.AsyncClient,  # noqa: F811
    secure_app: FastAPI,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr(session_store, "utcnow", clock)
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    for _ in range(2):  # used every 50 s: alive at 100 s, past the 60 s idle limit
        clock.advance(50)
        assert (await http.get("/api/runs")).status_code == 200
    clock.advance(25)  # 125 s after sign-in, 25 s after the last use: the cap
    assert (await http.get("/api/runs")).status_code == 401
    async with _browser(secure_app) as idle:
        await sign_in(idle, method="basic", username="alice", password=PASSWORD)
        clock.advance(59)
        assert (await idle.get("/api/runs")).status_code == 200
        clock.advance(61)  # not used for 61 s
        assert (await idle.get("/api/runs")).status_code == 401


async def test_symposia_sessions_end_ends_every_session_of_a_principal(
    http: httpx.AsyncClient,  # noqa: F811
    secure: Container,  # noqa: F811
) -> None:
    """For a person removed at the OpenID provider (or any principal): from the shell."""
    await sign_in(http, method="basic", username="alice", password=PASSWORD)
    assert (await http.get("/api/runs")).status_code == 200
    database = str(secure.settings.database_url)
    ended = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "symposia", "sessions", "end", "user:alice"],
        env={**os.environ, "DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ended.returncode == 0, ended.stderr
    assert "ended 1 session(s) of user:alice" in ended.stdout
    assert (await http.get("/api/runs")).status_code == 401

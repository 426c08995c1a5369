"""Signing in from a real browser: the sign-in page with Basic, an API key and OpenID
Connect, then an EventSource following a protected run on the session cookie alone; a
browser that is not the run's owner cannot read it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from symposia.settings import Settings
from tests.browser.conftest import screenshot
from tests.fakes.live import LiveServer, start_live_server
from tests.fakes.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider, oidc_provider
from tests.test_security import PASSWORD, basic, secure_settings

# Follows a stream with the browser's own EventSource (cookies only: it cannot send
# headers) until `done`; the stream stays open so the test can watch it reconnect.
FOLLOW = """
async (url) => await new Promise((resolve) => {
  const source = new EventSource(url, {withCredentials: true});
  window.source = source;
  const seen = {tokens: 0};
  source.addEventListener("token", () => { seen.tokens += 1; });
  source.addEventListener("done", (e) => resolve({...seen, done: JSON.parse(e.data)}));
  source.onerror = () => { if (source.readyState === 2 && !seen.done) resolve({error: true}); };
  setTimeout(() => resolve({timeout: true, readyState: source.readyState, ...seen}), 8000);
})
"""

STATUS = "async (url) => (await fetch(url)).status"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'symposia.db'}"  # one database is enough here


@pytest.fixture
async def provider() -> AsyncIterator[FakeOidcProvider]:
    async with oidc_provider() as running:
        yield running


@pytest.fixture
def settings(database_url: str, provider: FakeOidcProvider, other_origin: list[str]) -> Settings:
    return secure_settings(
        database_url,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_name="Test ID",
        cors_origins=other_origin,
        scripted_token_delay=0.0,
    )


async def start_run(live: LiveServer, headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as client:
        created = await client.post("/api/run", json={"topic": "tea", "max_turns": 2})
        assert created.status_code == 201, created.text
        run_id: str = created.json()["id"]
        return run_id


async def session(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = await page.evaluate("fetch('/auth/session').then(r => r.json())")
    return info


async def test_sign_in_with_basic_and_follow_a_run(page: Page, live: LiveServer) -> None:
    run_id = await start_run(live, basic("alice", PASSWORD))
    await page.goto(f"{live.base_url}/signin?next=/auth/session")
    await screenshot(page, "signin-page")
    await page.fill("#username", "alice")
    await page.fill("#password", "wrong")
    await page.click("#basic-submit")
    assert await page.text_content("#error") == "Invalid username or password."
    await screenshot(page, "signin-error")
    await page.fill("#username", "alice")
    await page.fill("#password", PASSWORD)
    await page.click("#basic-submit")
    await page.wait_for_url(f"{live.base_url}/auth/session")
    assert (await session(page))["principal"]["id"] == "user:alice"
    followed = await page.evaluate(FOLLOW, f"/api/stream/{run_id}")
    assert followed["tokens"] > 0
    assert followed["done"]["status"] == "completed"
    # Left open after `done`, EventSource reconnects once (after the retry: hint) and gets
    # a 204, which closes it for good instead of reconnecting forever.
    await page.wait_for_function("window.source.readyState === 2", timeout=10_000)


async def test_sign_in_with_the_keyboard_on_a_phone(page: Page, live: LiveServer) -> None:
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto(f"{live.base_url}/signin?next=/auth/session")
    wide = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not wide, "the sign-in page scrolls sideways on a phone"
    await screenshot(page, "signin-phone")
    # The first field has the focus: type, Tab, type, Enter.
    await page.keyboard.type("alice")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{live.base_url}/auth/session")
    assert (await session(page))["signed_in"] is True


async def test_sign_in_with_an_api_key(page: Page, live: LiveServer, app: Any) -> None:
    _, key = await app.state.container.api_keys.create("browser")
    run_id = await start_run(live, {"X-API-Key": key})
    await page.goto(f"{live.base_url}/signin?next=/auth/session")
    await page.fill("#api_key", key)
    await page.click("#key-submit")
    await page.wait_for_url(f"{live.base_url}/auth/session")
    assert (await session(page))["principal"]["kind"] == "api_key"
    await screenshot(page, "signin-api-key-done")
    followed = await page.evaluate(FOLLOW, f"/api/stream/{run_id}")
    assert followed["done"]["status"] == "completed"
    cookies = await page.context.cookies()
    assert all(key not in c["value"] for c in cookies)
    assert any(c["name"] == "symposia_session" and c["httpOnly"] for c in cookies)


async def test_sign_in_with_openid_connect_and_own_a_run(page: Page, live: LiveServer) -> None:
    await page.goto(f"{live.base_url}/signin?next=/auth/session")
    await page.click("text=Sign in with Test ID")
    await page.wait_for_url(f"{live.base_url}/auth/session")
    signed_in = await session(page)
    assert signed_in["principal"]["kind"] == "oidc"
    assert signed_in["principal"]["name"] == "ada@example.test"
    await screenshot(page, "signin-oidc-done")
    # A run started from the page (with the CSRF token) is Ada's, and streams to her.
    created = await page.evaluate(
        """async (token) => {
          const r = await fetch('/api/run', {method: 'POST', headers:
            {'Content-Type': 'application/json', 'X-CSRF-Token': token},
            body: JSON.stringify({topic: 'tea', max_turns: 1})});
          return {status: r.status, body: await r.json()};
        }""",
        signed_in["csrf_token"],
    )
    assert created["status"] == 201
    followed = await page.evaluate(FOLLOW, f"/api/stream/{created['body']['id']}")
    assert followed["done"]["status"] == "completed"


async def test_a_browser_cannot_read_anothers_run(
    page: Page, context: BrowserContext, live: LiveServer
) -> None:
    run_id = await start_run(live, basic("alice", PASSWORD))
    # Signed out: 401, and an EventSource fails instead of streaming.
    await page.goto(f"{live.base_url}/signin")
    assert await page.evaluate(STATUS, f"/api/stream/{run_id}") == 401
    assert await page.evaluate(FOLLOW, f"/api/stream/{run_id}") == {"error": True}
    # Signed in as someone else (by OIDC): the run does not exist for them.
    await page.goto(f"{live.base_url}/auth/oidc/login?next=/auth/session")
    await page.wait_for_url(f"{live.base_url}/auth/session")
    assert (await session(page))["signed_in"] is True
    for path in (f"/api/stream/{run_id}", f"/api/run/{run_id}"):
        assert await page.evaluate(STATUS, path) == 404, path
    assert await page.evaluate(FOLLOW, f"/api/stream/{run_id}") == {"error": True}
    await screenshot(page, "signin-not-yours")
    # Signed out again, the session no longer reads anything.
    token = (await session(page))["csrf_token"]
    status = await page.evaluate(
        "async (t) => (await fetch('/auth/signout', {method: 'POST', headers: "
        "{'X-CSRF-Token': t}})).status",
        token,
    )
    assert status == 204
    assert await page.evaluate(STATUS, "/api/runs") == 401


@pytest.fixture
async def other_site() -> AsyncIterator[LiveServer]:
    """A page served from another origin (another port of 127.0.0.1)."""

    async def blank(request: Any) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>elsewhere</title><p>elsewhere</p>")

    async with start_live_server(Starlette(routes=[Route("/", blank)])) as server:
        yield server


@pytest.fixture
def other_origin(other_site: LiveServer) -> list[str]:
    """CORS_ORIGINS: the other site may send the session cookie (EventSource withCredentials)."""
    return [other_site.base_url]


async def test_a_page_of_another_origin_follows_a_run_with_the_cookie(
    page: Page, live: LiveServer, other_site: LiveServer
) -> None:
    run_id = await start_run(live, basic("alice", PASSWORD))
    await page.goto(f"{live.base_url}/signin?next=/auth/session")
    await page.fill("#username", "alice")
    await page.fill("#password", PASSWORD)
    await page.click("#basic-submit")
    await page.wait_for_url(f"{live.base_url}/auth/session")
    await page.goto(other_site.base_url)
    followed = await page.evaluate(FOLLOW, f"{live.base_url}/api/stream/{run_id}")
    assert followed["done"]["status"] == "completed"


async def test_the_page_sends_a_signed_out_browser_to_sign_in_and_back(
    page: Page, live: LiveServer
) -> None:
    """The web page on a protected server: its first API call is a 401, so it goes to the
    sign-in page with `next` pointing back, and once signed in it works with the cookie
    (its changes carrying the CSRF token it reads from /auth/session)."""
    await page.goto(f"{live.base_url}/#/runs")
    await page.wait_for_url(f"{live.base_url}/signin?next=**")
    await page.fill("#username", "alice")
    await page.fill("#password", PASSWORD)
    await page.click("#basic-submit")
    await page.wait_for_url(f"{live.base_url}/#/runs")
    await page.wait_for_selector("body[data-ready='1']")
    await screenshot(page, "signin-back-on-the-page")
    created = await page.evaluate(
        """async () => {
          const {api, loadSession} = await import('/static/js/api.js');
          await loadSession();
          return await api('POST', '/api/run', {topic: 'from the page', max_turns: 1});
        }"""
    )
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        run = await client.get(f"/api/run/{created['id']}", headers=basic("alice", PASSWORD))
    assert run.status_code == 200  # alice's, made by the page with her session

"""`/`: browsers get the page, JSON clients the service's info and the caller's counts;
the page on a phone-width screen; a 401 sends the browser to sign in."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from symposia import __version__
from symposia.app import container_of, create_app
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.security.passwords import hash_password
from tests.browser.conftest import screenshot
from tests.browser.pages import open_page, page_settings, start_run
from tests.fakes.live import LiveServer, start_live_server

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}


@pytest.fixture
async def protected(tmp_path: Path, scripted: ScriptedProvider) -> AsyncIterator[FastAPI]:
    settings = page_settings(
        tmp_path,
        dev_mode=False,
        basic_auth_user="alice",
        basic_auth_pw_hash=hash_password("secret", rounds=4),
    )
    application = create_app(settings, ProviderRegistry([scripted]))
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://symposia.test"
    )


async def test_json_clients_get_service_info_and_the_callers_counts(
    client: httpx.AsyncClient,
) -> None:
    empty = (await client.get("/")).json()
    # With COMPAT_OPENROUTER_ROUTES on (the default) the OpenRouter seed's fields come
    # too, and its `status: "online"` (docs/seeds.md).
    assert empty == {
        "name": "Symposia",
        "status": "online",
        "service": "Symposia",
        "version": __version__,
        "conversations": 0,
        "total_messages": 0,
        "counts": {"runs": 0, "conversations": 0, "messages": 0},
    }
    conversation = (await client.post("/api/conversations", json={"title": "t"})).json()
    await client.post(f"/api/conversations/{conversation['id']}/messages", json={"message": "hi"})
    await client.post("/api/conversations", json={"title": "u"})
    info = await client.get("/", headers={"Accept": "application/json"})
    assert info.headers["content-type"] == "application/json"
    assert info.json()["counts"] == {"runs": 0, "conversations": 2, "messages": 1}


async def test_browsers_get_the_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in page.text
    assert (await client.get("/static/js/main.js")).status_code == 200
    # A client that prefers JSON is not sent HTML, whatever else it accepts.
    prefers_json = {"Accept": "text/html;q=0.5, application/json"}
    assert (await client.get("/", headers=prefers_json)).json()["status"] == "online"


async def test_a_protected_server_counts_only_the_callers_own(protected: FastAPI) -> None:
    container = container_of(protected)
    _, key = await container.api_keys.create("laptop")
    async with asgi_client(protected) as http:
        anonymous = (await http.get("/")).json()
        assert anonymous == {
            "name": "Symposia",
            "status": "online",
            "service": "Symposia",
            "version": __version__,
            "conversations": 0,
            "total_messages": 0,
        }
        assert (await http.get("/", headers={"X-API-Key": "sym_bad_key"})).json() == anonymous
        made = await http.post("/api/conversations", json={"title": "alice's"}, headers=BASIC)
        assert made.status_code == 201
        assert (await http.get("/", headers=BASIC)).json()["counts"]["conversations"] == 1
        theirs = (await http.get("/", headers={"X-API-Key": key})).json()
        assert theirs["counts"] == {"runs": 0, "conversations": 0, "messages": 0}


async def test_a_401_sends_the_browser_to_sign_in(browser: Browser, protected: FastAPI) -> None:
    # Wrong Basic credentials: Chromium tries them once at the server's challenge, then
    # hands the page the 401 (with none, headless Chromium waits at the challenge).
    wrong = {"username": "alice", "password": "wrong"}
    context = await browser.new_context(http_credentials=wrong)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        async with start_live_server(protected) as server:
            await page.goto(f"{server.base_url}/#/chats")
            await page.wait_for_url("**/signin?next=*")
            assert page.url == f"{server.base_url}/signin?next=%2F%23%2Fchats"
    finally:
        await context.close()


async def test_phone_width_and_keyboard(
    browser: Browser, live: LiveServer, scripted: ScriptedProvider
) -> None:
    run_id = await start_run(live.base_url, "scripted/echo", max_turns=2)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = await context.new_page()
        await open_page(page, live.base_url, f"/run/{run_id}")
        await expect(page.locator(".status .badge")).to_have_text("completed")
        no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
        assert await page.evaluate(no_sideways_scroll)
        await screenshot(page, "phone-debate")
        await open_page(page, live.base_url, "/new")
        assert await page.evaluate(no_sideways_scroll)
        await screenshot(page, "phone-form")
        await open_page(page, live.base_url, "/")
        # The keyboard alone: the skip link first, then the navigation, focus visible.
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"
        await page.keyboard.press("Tab")  # Chats
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
    finally:
        await context.close()


async def test_the_page_works_under_its_content_security_policy(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    """Issue 22: `/` is sent with a CSP (its own scripts and styles only, no framing); the
    page, its debates and its chats still work under it, with no violation reported."""
    violations: list[str] = []

    def report(text: str) -> None:
        violations.append(text)

    page.on("console", lambda m: report(m.text) if "Content Security" in m.text else None)
    await page.expose_function("reportViolation", report)
    await page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => window.reportViolation(e.violatedDirective + ' ' + e.blockedURI))"
    )
    run_id = await start_run(live.base_url, "scripted/echo", max_turns=2)
    await open_page(page, live.base_url, f"/run/{run_id}")
    await expect(page.locator(".status .badge")).to_have_text("completed")
    await open_page(page, live.base_url, "/chats")
    await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
    assert violations == []

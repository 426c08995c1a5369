"""The browser fixture itself: Chromium starts offline and renders a page from a live server."""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.conftest import screenshot
from tests.fakes.live import LiveServer


async def test_chromium_renders_the_servers_health(page: Page, live: LiveServer) -> None:
    response = await page.goto(f"{live.base_url}/health")
    assert response is not None
    assert response.status == 200
    assert '"status"' in await page.content()
    assert (await screenshot(page, "health")).stat().st_size > 0

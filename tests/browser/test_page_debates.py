"""The debate views in a real browser: start a run, watch tokens arrive, steer and stop it."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from symposia.providers.scripted import ScriptedProvider
from tests.browser.conftest import screenshot
from tests.browser.pages import add_watched_model, open_page
from tests.fakes.live import LiveServer


async def test_start_a_debate_and_watch_tokens_arrive(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    # Slow enough that a loaded machine still shows the first turn under way.
    model = add_watched_model(scripted, delay=0.08)
    await open_page(page, live.base_url, "/new")
    await page.get_by_label("Topic").fill("Should cities ban cars?")
    await page.get_by_label("Max turns").fill("2")
    for index in range(2):
        await page.locator("fieldset").nth(index).get_by_label("Model").select_option(model)
    await page.locator("fieldset").nth(1).get_by_label("System prompt").fill("Argue against.")
    await screenshot(page, "debate-form")
    await page.get_by_role("button", name="Start debate").click()

    first = page.locator(".turn[data-turn='0'] .text")
    await expect(first).to_contain_text("w2")
    # Tokens are arriving: the turn is not complete yet and its text grows.
    assert await page.locator(".turn[data-turn='0']").get_attribute("data-complete") is None
    await expect(page.locator(".now")).to_contain_text("Optimist is speaking")
    await screenshot(page, "debate-live")

    await expect(page.locator(".status .badge")).to_have_text("completed", timeout=30_000)
    await expect(page.locator(".turn")).to_have_count(2)
    await expect(page.locator(".turn[data-turn='1'] .text")).to_contain_text("[Argue against.]")
    # Each bot has its own colour.
    colours = [
        await page.locator(f".turn[data-turn='{n}']").evaluate(
            "e => getComputedStyle(e).borderLeftColor"
        )
        for n in range(2)
    ]
    assert colours[0] != colours[1]
    await screenshot(page, "debate-finished")

    run_id = await page.locator("section.live").get_attribute("data-run-id")
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        stored = (await client.get(f"/api/export/{run_id}.json")).json()
    texts = await page.locator(".turn .text").all_inner_texts()
    assert texts == [m["content"] for m in stored["messages"] if m["bot_index"] is not None]
    for ext in ("json", "md", "pdf"):
        link = page.get_by_role("link", name=ext.upper(), exact=True)
        assert await link.get_attribute("href") == f"/api/export/{run_id}.{ext}"


async def test_the_servers_refusal_is_shown_in_its_words(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    """An /api error is `{"code", "message"}`: the page shows the message, not "HTTP 422"."""
    add_watched_model(scripted)
    await open_page(page, live.base_url, "/new")
    await page.get_by_label("Topic").fill("   ")  # the browser's `required` lets spaces by
    await page.get_by_role("button", name="Start debate").click()
    notice = page.locator("#notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("topic")
    await expect(notice).not_to_contain_text("HTTP 422")

"""Steering a run from the page: a bot edited with the keyboard mid-run speaks with the
change on its next turn; stop; the runs list."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from symposia.providers.scripted import ScriptedProvider
from symposia.settings import Settings
from tests.browser.conftest import screenshot
from tests.browser.pages import (
    add_watched_model,
    open_page,
    page_settings,
    start_run,
    watch_run,
)
from tests.fakes.live import LiveServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The runs list test starts 22 short runs at once.
    return page_settings(tmp_path, max_concurrent_runs_per_principal=50)


async def test_a_bot_edited_with_the_keyboard_speaks_with_the_change_next_turn(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    await watch_run(page, live.base_url, scripted, 0.06, 3)

    card = page.get_by_role("form", name="Edit Optimist")
    await card.get_by_role("slider").focus()
    await page.keyboard.press("End")  # the slider's maximum, 2.0
    await expect(card.locator("output")).to_have_text("2")
    await page.keyboard.press("Tab")  # to the system prompt
    await page.keyboard.type("Now argue the other side.")
    await page.keyboard.press("Tab")  # to the Apply button
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Apply to Optimist"
    await page.keyboard.press("Enter")
    await expect(card.locator(".saved")).to_have_text("Saved: the next turn uses it.")

    await expect(page.locator(".status .badge")).to_have_text("completed", timeout=10_000)
    await expect(page.locator(".note.bot-updated")).to_contain_text("temperature = 2")
    # Turn 0 was under way with the old settings; Optimist's next turn (2) uses the new ones.
    await expect(page.locator(".turn[data-turn='0'] .text")).to_contain_text("[t=0.7] []")
    third = page.locator(".turn[data-turn='2'] .text")
    await expect(third).to_contain_text("[t=2.0] [Now argue the other side.]")


async def test_stop_shows_the_run_cancelled_and_why(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    await watch_run(page, live.base_url, scripted, 0.1, 6)
    await page.get_by_role("button", name="Stop").click()
    await expect(page.locator(".status .badge")).to_have_text("cancelled")
    await expect(page.get_by_test_id("ending")).to_contain_text("ended:")
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    await expect(page.get_by_role("form", name="Speak in the debate")).to_be_hidden()
    assert await page.locator(".turn").count() == 1
    await screenshot(page, "debate-stopped")


async def test_the_runs_list_pages_and_links_to_each_run(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    model = add_watched_model(scripted, delay=0.0)
    ids = [await start_run(live.base_url, model, 1, topic=f"Topic {n}") for n in range(22)]
    await open_page(page, live.base_url, "/")
    rows = page.locator(".run-row")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text("Topic 21")  # newest first
    await screenshot(page, "runs-list")
    await page.get_by_role("link", name="Older").click()
    await expect(rows).to_have_count(2)
    await expect(rows.last).to_contain_text("Topic 0")
    await page.get_by_role("link", name="Topic 0").click()
    await expect(page.locator("section.live")).to_have_attribute("data-run-id", ids[0])
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        newest = (await client.get("/api/runs", params={"limit": 1})).json()["items"][0]
    assert newest["id"] == ids[-1]

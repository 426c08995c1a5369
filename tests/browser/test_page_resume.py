"""Resume: a reload or a lost network mid-run continues where it was, nothing shown twice,
nothing missing; many tabs watch one run."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import BrowserContext, Page, expect

from symposia.providers.scripted import ScriptedProvider
from tests.browser.pages import (
    add_watched_model,
    open_page,
    start_run,
    watch_run,
)
from tests.fakes.live import LiveServer
from tests.sse import collect


async def stored_run(base_url: str, run_id: str) -> tuple[dict[str, Any], int]:
    """The stored transcript, and the id of the stream's last event (`done`)."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        transcript = (await client.get(f"/api/export/{run_id}.json")).json()
        events = await collect(client, f"/api/stream/{run_id}")
    return transcript, events[-1].id


async def assert_shows_exactly(page: Page, base_url: str, run_id: str) -> None:
    """Every event applied once, in order, and the turns' streamed text is the stored text."""
    view = page.locator("section.live")
    await expect(page.locator(".status .badge")).to_have_text("completed", timeout=15_000)
    transcript, last_id = await stored_run(base_url, run_id)
    assert await view.get_attribute("data-last-event-id") == str(last_id)
    assert await view.get_attribute("data-events-applied") == str(last_id)
    assert await page.locator("[data-repaired]").count() == 0
    turns = [m for m in transcript["messages"] if m["bot_index"] is not None]
    assert await page.locator(".turn .text").all_inner_texts() == [m["content"] for m in turns]
    assert await page.locator(".turn").evaluate_all("ns => ns.map(n => n.dataset.messageId)") == [
        m["id"] for m in turns
    ]


async def test_reload_mid_run_continues_without_gap_or_duplicate(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    run_id = await watch_run(page, live.base_url, scripted, 0.05, 3)
    await expect(page.locator(".turn[data-turn='1'] .text")).to_contain_text("w3")
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await assert_shows_exactly(page, live.base_url, run_id)


async def test_a_lost_network_mid_run_resumes_from_the_last_event(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    run_id = await watch_run(page, live.base_url, scripted, 0.05, 3)
    # The network drops: every connection to the server is cut (the run goes on).
    for connection in list(live.server.server_state.connections):
        connection.transport.abort()  # type: ignore[attr-defined]
    view = page.locator("section.live")
    await expect(view).to_have_attribute("data-reconnects", "1")
    await assert_shows_exactly(page, live.base_url, run_id)


async def test_many_tabs_watch_one_run(
    context: BrowserContext, live: LiveServer, scripted: ScriptedProvider
) -> None:
    model = add_watched_model(scripted, delay=0.03)
    run_id = await start_run(live.base_url, model, max_turns=2)
    tabs = [await context.new_page() for _ in range(3)]
    for tab in tabs:
        await open_page(tab, live.base_url, f"/run/{run_id}")
    for tab in tabs:
        await assert_shows_exactly(tab, live.base_url, run_id)

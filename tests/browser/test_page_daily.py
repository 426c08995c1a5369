"""The page as a newcomer uses it every day: the form's default roles, a branch's whole
story, the say box's place, the icon. Desktop (1280 by 800) and phone (390 by 844)."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Page, expect

from symposia.providers.scripted import ScriptedProvider
from tests.browser.conftest import screenshot
from tests.browser.pages import add_watched_model, open_page, start_run
from tests.fakes.live import LiveServer

PHONE = {"width": 390, "height": 844}


async def _finished(client: httpx.AsyncClient, run_id: str) -> dict[str, object]:
    for _ in range(200):
        run: dict[str, object] = (await client.get(f"/api/run/{run_id}")).json()
        if run["status"] in ("completed", "cancelled", "error"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def test_the_presets_default_is_what_a_run_naming_no_bots_gets(
    client: httpx.AsyncClient,
) -> None:
    """The page's form reads `default` from GET /api/presets: the very bots (names,
    prompts, settings) that POST /api/run gives a run naming none."""
    listed = (await client.get("/api/presets")).json()["default"]["body"]["bots"]
    created = await client.post("/api/run", json={"topic": "Cats?", "max_turns": 1})
    assert created.status_code == 201, created.text
    run = (await client.get(f"/api/run/{created.json()['id']}")).json()
    assert listed == run["bots"]
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg")


async def test_the_form_starts_from_the_servers_default_roles(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    """The first debate has the API's Optimist and Skeptic prompts (read from the server,
    not a copy in the page), editable; "Remove bot" only when a bot can go; no 404."""
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        defaults = (await client.get("/api/presets")).json()["default"]["body"]["bots"]
        icon = await client.get("/favicon.ico")
    assert [b["name"] for b in defaults] == ["Optimist", "Skeptic"]
    assert all(b["system_prompt"] for b in defaults)
    assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")

    model = add_watched_model(scripted, delay=0.01)
    await open_page(page, live.base_url, "/new")
    sets = page.locator("fieldset")
    for index, bot in enumerate(defaults):
        await expect(sets.nth(index).get_by_label("Name")).to_have_value(bot["name"])
        await expect(sets.nth(index).get_by_label("System prompt")).to_have_value(
            bot["system_prompt"]
        )
    await expect(page.locator("button.remove")).to_have_count(0)
    await page.get_by_role("button", name="Add bot").click()
    await expect(page.locator("button.remove")).to_have_count(3)
    await page.get_by_role("button", name="Remove bot 3").click()
    await expect(page.locator("fieldset")).to_have_count(2)
    await expect(page.locator("button.remove")).to_have_count(0)
    await screenshot(page, "daily-form-defaults")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "daily-form-defaults-phone")
    await page.set_viewport_size({"width": 1280, "height": 800})
    icon_href = await page.locator("link[rel=icon]").get_attribute("href")
    assert icon_href is not None

    await page.get_by_label("Topic").fill("Should cities ban cars?")
    await page.get_by_label("Max turns").fill("2")
    await sets.nth(1).get_by_label("System prompt").fill("You are Skeptic, edited.")
    for index in range(2):
        await sets.nth(index).get_by_label("Model").select_option(model)
    await page.get_by_role("button", name="Start debate").click()
    # The scripted model repeats the first 40 characters of the system prompt it was given.
    await expect(page.locator(".turn[data-turn='0'] .text")).to_contain_text(
        f"[{defaults[0]['system_prompt'][:40]}]"
    )
    await expect(page.locator(".turn[data-turn='1'] .text")).to_contain_text(
        "[You are Skeptic, edited.]"
    )
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        icon_file = await client.get(icon_href)
    assert icon_file.status_code == 200
    assert missing == [], missing


async def test_a_branch_shows_what_it_inherited_and_is_marked_in_the_list(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    """A branch's view starts with the parent's turns and the person's words, marked as
    inherited and linking to the parent, then its own turns; the list marks it too."""
    model = add_watched_model(scripted, delay=0.02)
    parent = await start_run(live.base_url, model, max_turns=2, topic="Trains?")
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        said = await client.post(f"/api/run/{parent}/messages", json={"content": "Mind costs."})
        assert said.status_code == 201, said.text
        await _finished(client, parent)
        branched = await client.post(
            f"/api/run/{parent}/branch", json={"at_turn": 2, "max_turns": 3}
        )
        assert branched.status_code == 201, branched.text
        branch = branched.json()["id"]
        parent_run = (await client.get(f"/api/export/{parent}.json")).json()

    await open_page(page, live.base_url, f"/run/{branch}")
    inherited = page.locator(".transcript .inherited")
    await expect(inherited).to_have_count(len(parent_run["messages"]))
    assert await inherited.locator(".text").all_inner_texts() == [
        m["content"] for m in parent_run["messages"]
    ]
    await expect(page.locator(".person.inherited .text")).to_have_text("Mind costs.")
    links = page.locator(".inherited a.inherited-from")
    for href in await links.evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert href == f"#/run/{parent}"
    # Its own turn follows, after the marked branch point.
    await expect(page.locator(".turn[data-turn='2'] .text")).to_contain_text("w3")
    order = await page.locator(".transcript > li").evaluate_all(
        "items => items.map(i => i.classList.contains('inherited') ? 'old'"
        " : i.classList.contains('branch-point') ? 'point' : 'new')"
    )
    assert order == ["old"] * len(parent_run["messages"]) + ["point", "new"]
    await screenshot(page, "daily-branch-desktop")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "daily-branch-phone")

    await open_page(page, live.base_url, "/")
    row = page.locator(f".run-row[data-run-id='{branch}']")
    await expect(row.locator("a.badge.branch")).to_have_attribute("href", f"#/run/{parent}")
    await expect(page.locator(f".run-row[data-run-id='{parent}'] .badge.branch")).to_have_count(0)
    await screenshot(page, "daily-runs-list-phone")


async def test_the_say_box_sits_under_the_transcript_on_a_phone(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    """On a phone the one column reads transcript, say box, bots: the say box is not
    below the bot cards, and it stays in view while the transcript is long."""
    await page.set_viewport_size(PHONE)
    model = add_watched_model(scripted, delay=0.3)
    run_id = await start_run(live.base_url, model, max_turns=4)
    await open_page(page, live.base_url, f"/run/{run_id}")
    await expect(page.locator(".turn[data-turn='0'] .text")).to_contain_text("w1")
    say = await page.locator("form.say").bounding_box()
    transcript = await page.locator(".transcript").bounding_box()
    bots = await page.locator("aside.side").bounding_box()
    assert say is not None
    assert transcript is not None
    assert bots is not None
    assert transcript["y"] + transcript["height"] <= say["y"] + 1
    assert say["y"] + say["height"] <= bots["y"]
    position = await page.locator("form.say").evaluate("e => getComputedStyle(e).position")
    assert position == "sticky"
    await screenshot(page, "daily-say-phone")
    await page.get_by_label("Your message").fill("Shorter, please.")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".transcript .person .text")).to_have_text("Shorter, please.")
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        await client.post(f"/api/run/{run_id}/stop")

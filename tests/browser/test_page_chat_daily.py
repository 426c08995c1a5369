"""Chats as people know them, in a real browser at desktop (1280 by 800) and phone (390 by
844) sizes: the sidebar, a title made from the first exchange, Markdown answers (and run
turns) sanitised, copy, regenerate with a switch between answers, stop, export links, a
panel from a preset with its routing shown, and tool calls with their results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from symposia.errors import ProviderFailure
from symposia.providers.base import CompletionRequest, ToolCall
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from tests.browser.conftest import screenshot
from tests.browser.pages import open_page, page_settings, start_run
from tests.fakes.live import LiveServer

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
MARKDOWN = """## Rivers of Europe

The longest are:

1. **Volga**, 3,530 km
2. *Danube*, 2,850 km

| River | Length |
|---|---|
| Volga | 3530 |
| Danube | 2850 |

```python
print("longest: Volga")
```
"""
# Raw HTML and a script URL in an answer: shown as text, never run.
HOSTILE = (
    "Hello <script>window.__pwned = 1</script> and "
    '<img src=x onerror="window.__pwned = 2"> and [a link](javascript:window.__pwned=3) '
    'and <a href=# onclick="window.__pwned=4">click</a>'
)


async def phone_screenshot(page: Page, name: str) -> None:
    """Load the view afresh at a phone's size (the sidebar folds in a chat), then save it."""
    await page.set_viewport_size(PHONE)
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    if "/chat/" in page.url:
        await expect(page.locator("details.sidebar")).not_to_have_attribute("open", "")
    await screenshot(page, name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return page_settings(tmp_path, chat_titles=True)


async def test_a_chat_renders_markdown_is_titled_and_regenerates(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    calls = {"n": 0}

    def answer(request: CompletionRequest) -> str:
        if "short title" in request.messages[-1].content:
            return "Rivers of Europe"
        calls["n"] += 1
        return MARKDOWN if calls["n"] == 1 else "A **second** answer."

    scripted.add_script("md", Script(respond=answer, delay=0.01))
    await open_page(page, live.base_url, "/chats")
    await expect(page.get_by_text("No chats yet.")).to_be_visible()
    new = page.get_by_role("form", name="New chat")
    await new.get_by_label("Model").select_option("scripted/md")
    await new.get_by_role("button", name="Start chat").click()
    await page.get_by_label("Message", exact=True).fill("Which rivers are longest?")
    await page.get_by_label("Message", exact=True).press("Enter")

    reply = page.locator(".msg.assistant").first
    await expect(reply).to_have_attribute("data-status", "complete")
    text = reply.locator(".text")
    await expect(text.locator("h2")).to_have_text("Rivers of Europe")
    await expect(text.locator("ol > li")).to_have_count(2)
    await expect(text.locator("strong")).to_have_text("Volga")
    await expect(text.locator("table tr")).to_have_count(3)
    await expect(text.locator("pre code.language-python")).to_contain_text('print("longest')
    await expect(text.locator(".code-head .lang")).to_have_text("python")

    # The title comes from the first exchange, in the background: sidebar and title box.
    await expect(page.locator(".chat-list a")).to_have_text("Rivers of Europe", timeout=15_000)
    await expect(page.get_by_label("Title")).to_have_value("Rivers of Europe")
    await expect(page.locator(".exports a")).to_have_count(3)
    href = await page.locator(".exports a", has_text="Markdown").get_attribute("href")
    assert href is not None
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        exported = await client.get(href)
    assert exported.status_code == 200
    assert "Volga" in exported.text
    await screenshot(page, "chat-markdown")
    await phone_screenshot(page, "chat-markdown-phone")
    await page.set_viewport_size(DESKTOP)
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")

    # Copy: the answer's Markdown source goes to the clipboard.
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await reply.get_by_role("button", name="Copy", exact=True).click()
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == MARKDOWN
    await text.get_by_role("button", name="Copy code").click()
    assert await page.evaluate("navigator.clipboard.readText()") == 'print("longest: Volga")\n'

    # Regenerate: a second answer, the first kept; switch back and forth.
    await reply.get_by_role("button", name="Regenerate").click()
    await expect(page.locator(".msg.assistant .text")).to_have_text("A second answer.")
    switch = page.locator(".alternatives")
    await expect(switch).to_contain_text("2 / 2")
    await page.get_by_role("button", name="Previous answer").click()
    await expect(switch).to_contain_text("1 / 2")
    await expect(page.locator(".msg.assistant .text h2")).to_have_text("Rivers of Europe")
    await expect(page.locator(".msg")).to_have_count(2)
    await screenshot(page, "chat-alternatives")
    await page.get_by_role("button", name="Next answer").click()
    await expect(switch).to_contain_text("2 / 2")

    # The sidebar: newest first, filtered by title.
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        await client.post("/api/conversations", json={"title": "Cooking pasta"})
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    rows = page.locator(".chat-list li:not([hidden]) a")
    await expect(rows).to_have_text(["Cooking pasta", "Rivers of Europe"])
    await page.get_by_label("Search chats").fill("river")
    await expect(rows).to_have_text(["Rivers of Europe"])
    await page.get_by_label("Search chats").fill("nothing like it")
    await expect(page.get_by_text("No chat has that in its title.")).to_be_visible()


async def test_an_answer_with_html_and_script_links_runs_nothing(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    scripted.add_script("hostile", Script(chunks=[HOSTILE]))
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        created = await client.post(
            "/api/conversations", json={"title": "t", "default_model": "scripted/hostile"}
        )
        conversation = created.json()["id"]
    await open_page(page, live.base_url, f"/chat/{conversation}")
    await page.get_by_label("Message", exact=True).fill("hi")
    await page.get_by_label("Message", exact=True).press("Enter")
    text = page.locator(".msg.assistant .text")
    await expect(page.locator(".msg.assistant")).to_have_attribute("data-status", "complete")
    await expect(text).to_contain_text("<script>window.__pwned = 1</script>")  # as text
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator(".msg script, .msg img, .msg [onerror], .msg [onclick]").count() == 0
    assert await page.locator('.msg a[href^="javascript"]').count() == 0
    for link in await page.locator(".msg a").all():
        await link.click(modifiers=["Control"])  # clicks run nothing either
    assert await page.evaluate("window.__pwned") is None

    # Run turns are rendered the same way.
    run_id = await start_run(live.base_url, "scripted/hostile", 1)
    await open_page(page, live.base_url, f"/run/{run_id}")
    turn = page.locator(".turn[data-turn='0']")
    await expect(turn).to_have_attribute("data-complete", "1")
    await expect(turn.locator(".text")).to_contain_text("<script>")
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator(".turn script, .turn img, .turn [onerror]").count() == 0


async def test_markdown_in_run_turns(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    scripted.add_script("md", Script(chunks=[MARKDOWN]))
    run_id = await start_run(live.base_url, "scripted/md", 2)
    await open_page(page, live.base_url, f"/run/{run_id}")
    turn = page.locator(".turn[data-turn='1']")
    await expect(turn).to_have_attribute("data-complete", "1")
    await expect(turn.locator(".text h2")).to_have_text("Rivers of Europe")
    await expect(turn.locator(".text table")).to_have_count(1)
    await expect(turn.locator(".text pre code")).to_contain_text("print(")
    await screenshot(page, "run-markdown")


async def test_stop_a_chat_reply_keeps_what_it_said(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=[f" w{i}" for i in range(400)], delay=0.03))
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        created = await client.post(
            "/api/conversations", json={"title": "Slow", "default_model": "scripted/slow"}
        )
        conversation = created.json()["id"]
    await open_page(page, live.base_url, f"/chat/{conversation}")
    await page.get_by_label("Message", exact=True).fill("Count slowly")
    await page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator(".msg.assistant")
    await expect(reply.locator(".text")).to_contain_text("w3")
    send = page.get_by_role("button", name="Send")
    await expect(send).to_be_disabled()
    await page.get_by_role("button", name="Stop").click()
    await expect(reply).to_have_attribute("data-status", "partial")
    await expect(reply.locator(".badge")).to_have_text("stopped")
    await expect(send).to_be_enabled()
    await expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    shown = await reply.locator(".text").inner_text()
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        stored = (await client.get(f"/api/conversations/{conversation}/messages")).json()
    answer = stored["items"][-1]
    assert answer["status"] == "partial"
    assert answer["content"].strip() == shown.strip()
    assert len(answer["content"].split()) < 400
    await phone_screenshot(page, "chat-stopped-phone")


def _panel_model(request: CompletionRequest) -> str:
    last = request.messages[-1].content
    if "Route the user's latest message" in last:
        return json.dumps({"agent": "billing", "reason": "an invoice question"})
    system = next((m.content for m in request.messages if m.role == "system"), "")
    return f"Billing here. ({system[:30]})" if "billing" in system else "Someone else."


async def test_a_panel_from_a_preset_shows_who_answered_and_why(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    scripted.add_script("panel", Script(respond=_panel_model))
    await open_page(page, live.base_url, "/chats")
    new = page.get_by_role("form", name="New chat")
    await new.get_by_label("Title").fill("Support")
    await new.get_by_label("Model").select_option("scripted/panel")
    await new.get_by_label("Panel").select_option("support")
    await new.get_by_label("Specialists answer with").select_option("scripted/panel")
    await new.get_by_role("button", name="Start chat").click()
    await expect(page.locator(".panel-summary")).to_contain_text("billing (scripted/panel)")
    await expect(page.get_by_label("Model for this message")).to_have_count(0)
    await page.get_by_label("Message", exact=True).fill("My invoice is wrong.")
    await page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator(".msg.assistant")
    await expect(reply).to_have_attribute("data-status", "complete")
    await expect(reply.locator(".who strong")).to_have_text("billing")
    await expect(reply.locator(".routing")).to_contain_text(
        "Routed to billing: an invoice question"
    )
    await expect(reply.locator(".text")).to_contain_text("Billing here.")
    await screenshot(page, "chat-panel")
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await expect(page.locator(".msg.assistant .routing")).to_contain_text("Routed to billing")
    await phone_screenshot(page, "chat-panel-phone")
    await open_page(page, live.base_url, "/chats")  # the chats page on a phone: list open
    await expect(page.locator("details.sidebar")).to_have_attribute("open", "")
    await page.get_by_role("form", name="New chat").get_by_label("Panel").select_option("study")
    await screenshot(page, "chats-new-phone")


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


async def test_tool_calls_and_their_results_are_shown_collapsed(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    scripted.add_script(
        "tooly",
        Script(
            chunks=["Let me look."],
            tool_calls=[ToolCall("call_1", "get_weather", '{"city": "Oslo"}')],
            after_tool=Script(chunks=["It is **sunny** in Oslo."]),
        ),
    )
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        created = await client.post(
            "/api/conversations",
            json={"title": "Weather", "default_model": "scripted/tooly", "tools": TOOLS},
        )
        conversation = created.json()["id"]
    await open_page(page, live.base_url, f"/chat/{conversation}")
    await page.get_by_label("Message", exact=True).fill("Weather in Oslo?")
    await page.get_by_label("Message", exact=True).press("Enter")
    call = page.locator("details.tool-call")
    await expect(call).to_have_count(1)
    await expect(call.locator("summary")).to_contain_text("Tool call: get_weather")
    await expect(call.locator(".tool-state")).to_have_text("waiting for the result")
    await expect(call.locator(".tool-arguments")).to_be_hidden()  # collapsed

    async with httpx.AsyncClient(base_url=live.base_url) as client:
        sent = await client.post(
            f"/api/conversations/{conversation}/messages",
            json={"role": "tool", "tool_call_id": "call_1", "message": '{"sky": "sunny"}'},
        )
        assert sent.status_code == 201, sent.text
    await page.reload()
    await page.wait_for_selector("body[data-ready='1']")
    await expect(page.locator(".msg.assistant").last.locator("strong").last).to_have_text("sunny")
    call = page.locator("details.tool-call")
    await expect(call.locator(".tool-state")).to_have_text("done")
    await call.locator("summary").click()
    await expect(call.locator(".tool-arguments")).to_contain_text('"city": "Oslo"')
    await expect(call.locator(".tool-result")).to_contain_text('"sky": "sunny"')
    await expect(page.locator(".msg.tool")).to_have_count(0)  # shown on its call
    await screenshot(page, "chat-tools")
    await phone_screenshot(page, "chat-tools-phone")


async def test_a_failed_answer_can_be_tried_again(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    failure = ProviderFailure("upstream_error", "the model is down", "scripted", "broken")
    scripted.add_script("broken", Script(chunks=["x"], fail_after=0, failure=failure))
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        created = await client.post(
            "/api/conversations", json={"title": "t", "default_model": "scripted/broken"}
        )
        conversation = created.json()["id"]
    await open_page(page, live.base_url, f"/chat/{conversation}")
    await page.get_by_label("Message", exact=True).fill("Hello there")
    await page.get_by_label("Message", exact=True).press("Enter")
    await expect(page.locator(".note.error")).to_contain_text("the model is down")
    async with httpx.AsyncClient(base_url=live.base_url) as client:  # the model is back
        await client.patch(
            f"/api/conversations/{conversation}", json={"default_model": "scripted/echo"}
        )
    await page.get_by_role("button", name="Try again").click()
    answer = page.locator(".msg.assistant")
    await expect(answer).to_have_attribute("data-status", "complete")
    await expect(answer.locator(".text")).to_have_text("You said: Hello there")
    await expect(page.locator(".msg.user")).to_have_count(1)
    await expect(page.locator(".note.error")).to_have_count(0)

"""Chats in a real browser: a per-message model override, streamed replies, rename, delete."""

from __future__ import annotations

import httpx
from playwright.async_api import Dialog, Page, expect

from symposia.providers.scripted import ScriptedProvider
from tests.browser.conftest import screenshot
from tests.browser.pages import add_watched_model, open_page
from tests.fakes.live import LiveServer


async def test_a_chat_with_a_per_message_model_override(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    watched = add_watched_model(scripted, delay=0.03)
    await open_page(page, live.base_url, "/chats")
    new = page.get_by_role("form", name="New chat")
    await new.get_by_label("Title").fill("Rivers")
    await new.get_by_label("Model").select_option("scripted/echo")
    await new.get_by_label("Title").press("Enter")  # forms submit with Enter

    message = page.get_by_label("Message", exact=True)
    await message.fill("Name a river.")
    await page.get_by_label("Model for this message").select_option(watched)
    await message.press("Enter")
    reply = page.locator(".msg.assistant").nth(0)
    await expect(reply.locator(".text")).to_contain_text("w2")  # streaming
    await expect(reply).to_have_attribute("data-status", "complete")
    await expect(reply.locator(".model")).to_have_text(f" · {watched}")

    await page.get_by_label("Model for this message").select_option("")
    await message.fill("And another?")
    await page.get_by_role("button", name="Send").click()
    second = page.locator(".msg.assistant").nth(1)
    await expect(second.locator(".text")).to_have_text("You said: And another?")
    await expect(second.locator(".model")).to_have_text(" · scripted/echo")
    await screenshot(page, "chat")

    # A reload shows the same conversation, each answer with the model that gave it.
    await page.reload()
    await expect(page.locator(".msg")).to_have_count(4)
    models = await page.locator(".msg.assistant .model").all_inner_texts()
    assert [m.strip() for m in models] == [f"· {watched}", "· scripted/echo"]


async def test_rename_and_delete_a_chat(page: Page, live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        created = (await client.post("/api/conversations", json={"title": "Old name"})).json()
    await open_page(page, live.base_url, f"/chat/{created['id']}")
    title = page.get_by_label("Title")
    await expect(title).to_have_value("Old name")
    await title.fill("New name")
    async with page.expect_response(lambda r: r.request.method == "PATCH") as patched:
        await title.press("Enter")
    assert (await patched.value).status == 200
    await page.get_by_role("link", name="Chats").click()
    await expect(page.get_by_role("link", name="New name")).to_be_visible()
    await screenshot(page, "chats-list")

    await page.get_by_role("link", name="New name").click()
    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await page.get_by_role("button", name="Delete chat").click()
    await expect(page.get_by_role("heading", name="Chats")).to_be_visible()
    await expect(page.get_by_text("No chats yet.")).to_be_visible()
    assert dialogs == ["Delete this chat and its messages?"]
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        assert (await client.get(f"/api/conversations/{created['id']}")).status_code == 404

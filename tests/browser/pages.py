"""What the page tests share: a SQLite-only app (one browser run per test, not one per
database), a scripted model slow enough to watch, and waiting for the page to be ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from symposia.providers.base import CompletionRequest
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from tests.conftest import make_settings

WATCHED = "scripted/watched"
WORDS = 12


def page_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(database_url=f"sqlite:///{tmp_path / 'symposia.db'}", **overrides)


def _say_settings(request: CompletionRequest) -> str:
    """The bot's temperature and system prompt, then counting: a turn shows what it used."""
    system = next((m.content for m in request.messages if m.role == "system"), "")
    counting = " ".join(f"w{n}" for n in range(1, WORDS + 1))
    return f"[t={request.temperature}] [{system[:40]}] {counting}"


def add_watched_model(scripted: ScriptedProvider, delay: float = 0.04) -> str:
    """`scripted/watched`: a turn of ~WORDS tokens `delay` apart that states its settings."""
    scripted.add_script("watched", Script(respond=_say_settings, delay=delay))
    return WATCHED


async def open_page(page: Page, base_url: str, route: str = "") -> None:
    """Load the page afresh at `#route` and wait until its first view is rendered (from
    the page itself, a change of `#route` alone would not load it again)."""
    await page.goto("about:blank")
    await page.goto(f"{base_url}/#{route}")
    await page.wait_for_selector("body[data-ready='1']")


async def start_run(base_url: str, model: str, max_turns: int, topic: str = "Cars?") -> str:
    """Start a two-bot run (Optimist, Skeptic) on `model` through the API; its id."""
    body = {
        "topic": topic,
        "max_turns": max_turns,
        "bots": [{"name": "Optimist", "model": model}, {"name": "Skeptic", "model": model}],
    }
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post("/api/run", json=body)
    response.raise_for_status()
    run_id: str = response.json()["id"]
    return run_id


async def watch_run(
    page: Page, base_url: str, scripted: ScriptedProvider, delay: float, max_turns: int
) -> str:
    """Start a run on `scripted/watched` and open its view once turn 0 is streaming."""
    run_id = await start_run(base_url, add_watched_model(scripted, delay), max_turns)
    await open_page(page, base_url, f"/run/{run_id}")
    await expect(page.locator(".turn[data-turn='0'] .text")).to_contain_text("w1")
    return run_id

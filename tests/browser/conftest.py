"""Headless Chromium (Debian's package) driven by Playwright, for tests of what a person sees.

A browser download does not work offline, so Playwright launches `/usr/bin/chromium` (or
`CHROMIUM`) with `executable_path`. Without it the tests skip with the reason, except under
CI, where a missing browser fails the run. Screenshots go to `test-output/browser/`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from symposia.settings import Settings
from tests.conftest import make_settings

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"
# Flags for a closed network: without the background-networking ones Chromium keeps
# trying (and failing) to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        reason = (
            "Debian's chromium is not installed (`apt-get install chromium`; "
            "`make test` installs it where it can)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies) per test."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot for a reviewer to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Browser tests run on SQLite: what they check is the page, not the database (the API's
    own tests cover both)."""
    return make_settings(database_url=f"sqlite:///{tmp_path / 'symposia.db'}")

"""Issue 26 on the page: a turn's tokens and cost read as money ("free" for a model that
costs nothing, never "$0.000000"); the say box stays in view under a long transcript on a
phone; the Markdown and PDF downloads of the run view read as documents. Desktop (1280 by
800) and phone (390 by 844)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from playwright.async_api import Page, expect

from symposia.export.outline import money
from symposia.providers.scripted import ScriptedProvider
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.browser.pages import add_watched_model, open_page, start_run
from tests.fakes.live import LiveServer

PHONE = {"width": 390, "height": 844}
AMOUNTS = [0, 0.0012, 0.000007, 0.00055, 0.01, 1.25, 1234.5, 0.123456]


async def test_a_turn_shows_its_tokens_and_its_cost_as_money(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    model = add_watched_model(scripted, delay=0.005)
    run_id = await start_run(live.base_url, model, max_turns=2)
    await open_page(page, live.base_url, f"/run/{run_id}")
    usage = page.locator(".turn[data-turn='1'] .turn-foot .usage")
    await expect(usage).to_contain_text(" tokens", timeout=15_000)
    await expect(usage).to_contain_text("· free")  # scripted models cost nothing
    assert "0.000000" not in await page.locator("main").inner_text()
    await screenshot(page, "issue26-turn-usage")
    # The page's money is the exports' money, amount for amount.
    page_money = await page.evaluate(
        "(amounts) => import('/static/js/format.js').then((m) => amounts.map(m.money))",
        AMOUNTS,
    )
    assert page_money == [money(usd) for usd in AMOUNTS]


async def test_the_say_box_stays_in_view_under_a_long_transcript_on_a_phone(
    page: Page, live: LiveServer, scripted: ScriptedProvider
) -> None:
    """Scrolled back to the top of a transcript taller than the screen, the say box is
    still on screen, at its foot."""
    await page.set_viewport_size(PHONE)
    model = add_watched_model(scripted, delay=0.3)
    run_id = await start_run(live.base_url, model, max_turns=6)
    await open_page(page, live.base_url, f"/run/{run_id}")
    await expect(page.locator(".turn[data-turn='0'] .text")).to_contain_text("w1")
    # Thirty long notes make the transcript several screens tall.
    await page.evaluate(
        """() => { const list = document.querySelector('.transcript');
        for (let i = 0; i < 30; i++) { const li = document.createElement('li');
          li.className = 'note'; li.textContent = 'A long line of the debate. '.repeat(8);
          list.append(li); } }"""
    )
    transcript = await page.locator(".transcript").bounding_box()
    assert transcript is not None
    assert transcript["height"] > 2 * PHONE["height"]
    await page.evaluate("() => window.scrollTo(0, 300)")
    say = await page.locator("form.say").bounding_box()
    assert say is not None
    assert say["y"] >= 0
    assert say["y"] + say["height"] <= PHONE["height"] + 1
    assert say["y"] + say["height"] >= PHONE["height"] - 2  # at the foot of the screen
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "issue26-say-sticky-phone.png"))
    await page.get_by_label("Your message").fill("Still here.")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".transcript .person .text")).to_have_text(
        "Still here.", timeout=15_000
    )
    await page.request.post(f"{live.base_url}/api/run/{run_id}/stop")


def _pdf_text_and_image(pdf: Path) -> str:
    """The PDF's text (pdftotext), its first page saved as an image to look at."""
    image = str(SCREENSHOTS / "issue26-pdf")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), image], check=True
    )
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True
    )
    return done.stdout.decode()


async def _download(page: Page, name: str, tmp_path: Path) -> Path:
    async with page.expect_download() as info:
        await page.get_by_role("link", name=name, exact=True).click()
    path = tmp_path / (await info.value).suggested_filename
    await (await info.value).save_as(path)
    return path


async def test_the_markdown_and_pdf_downloads_read_as_documents(
    page: Page, live: LiveServer, scripted: ScriptedProvider, tmp_path: Path
) -> None:
    """From the run view: the Markdown renders (CommonMark) with the settings as tables and
    each turn its own section, the turns' text not fenced; the PDF's text opens with the
    topic, and its first page turns into an image."""
    model = add_watched_model(scripted, delay=0.005)
    run_id = await start_run(live.base_url, model, max_turns=2, topic="Trams or buses?")
    await open_page(page, live.base_url, f"/run/{run_id}")
    await expect(page.locator(".status .badge")).to_have_text("completed", timeout=15_000)
    markdown = (await _download(page, "MD", tmp_path)).read_text(encoding="utf-8")
    assert markdown.startswith("# Trams or buses?\n")
    assert "```text\n[t=" not in markdown  # a turn's text is Markdown, not a code block
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert html.count("<table>") >= 3  # the run, its settings, each participant
    assert "<h3>Turn 1 · Optimist</h3>" in html
    assert "<h3>Turn 2 · Skeptic</h3>" in html
    assert "w12" in html
    pdf = await _download(page, "PDF", tmp_path)
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils is not installed")
    text = await asyncio.to_thread(_pdf_text_and_image, pdf)
    assert text.lstrip().startswith("Trams or buses?")
    assert "Turn 2 · Skeptic" in text
    await screenshot(page, "issue26-run-finished")

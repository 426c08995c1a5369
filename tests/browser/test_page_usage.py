"""The usage view in a real browser: a key's spend per day by model as a chart with its
daily budget as a line, and the same in a table (issue 25)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect

from symposia.app import container_of
from symposia.domain.models import utcnow
from symposia.governance.budgets import Settlement
from symposia.governance.ledger import UsageEntry, row_of
from symposia.governance.limits import to_nanos
from symposia.security.auth import static_key_id
from symposia.settings import Settings
from tests.browser.conftest import screenshot
from tests.browser.pages import open_page
from tests.conftest import make_settings
from tests.fakes.live import LiveServer

KEY = "usage-view-static-key-0123456789"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url, dev_mode=False, api_keys=[KEY])


async def test_usage_view_draws_spend_per_day_with_the_budget_line(
    page: Page, live: LiveServer, app: FastAPI
) -> None:
    container = container_of(app)
    key_id = static_key_id(KEY)
    await container.meter.keys.set(
        key_id, {"max_budget_nanos": to_nanos(0.05), "budget_period": "day"}
    )
    now = utcnow()
    spend = {
        0: {"openai/gpt-4o-mini": 0.02, "anthropic/claude-haiku-4-5": 0.01},
        1: {"openai/gpt-4o-mini": 0.04},
        2: {"anthropic/claude-haiku-4-5": 0.03},
    }
    for days_ago, models in spend.items():
        for model, usd in models.items():
            row = row_of(
                at=now - timedelta(days=days_ago),
                principal=f"key:{key_id}",
                key_id=key_id,
                model=model,
                provider_model=model,
                surface="/v1/chat/completions",
                run_id=None,
                conversation_id=None,
                response_id=None,
                prompt_tokens=100,
                completion_tokens=50,
                estimated=False,
                cost_nanos=to_nanos(usd),
                latency_ms=10.0,
                ttft_ms=2.0,
                status="ok",
            )
            # Today's are counted in the key's spend this day too.
            owed = Settlement(key_id, None, to_nanos(usd), "day", now) if not days_ago else None
            container.meter.ledger.add(UsageEntry(row, owed))
    await container.meter.ledger.flush()
    await page.context.set_extra_http_headers({"Authorization": f"Bearer {KEY}"})
    await open_page(page, live.base_url, "/usage")
    await expect(page.get_by_role("heading", name="Usage")).to_be_visible()
    await expect(page.get_by_role("link", name="Usage")).to_have_attribute("aria-current", "page")
    chart = page.get_by_role("img", name="Spend per day by model")
    await expect(chart.locator("rect")).to_have_count(4)  # one bar piece per day and model
    await expect(chart.locator(".budget-line")).to_have_count(1)
    await expect(page.locator(".legend li")).to_have_text(
        ["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"]
    )
    await expect(page.locator(".usage-table tbody tr")).to_have_count(4)
    await expect(page.locator("[data-field=budget]")).to_have_text("$0.0500")
    await expect(page.locator("[data-field=spent]")).to_have_text("$0.0300")
    await expect(page.locator("[data-field=remaining]")).to_have_text("$0.0200")
    await screenshot(page, "usage")

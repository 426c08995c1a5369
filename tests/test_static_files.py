"""`/static/`: the page's files carry the page's security headers, on GET and HEAD."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from symposia.api.ui import PAGE_POLICY
from symposia.app import create_app
from tests.conftest import make_settings


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Static files need no started container: no database is opened."""
    app = create_app(make_settings(database_url=f"sqlite:///{tmp_path / 's.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        yield c


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_static_files_are_not_sniffed_and_keep_the_page_policy(
    http: httpx.AsyncClient, method: str
) -> None:
    response = await http.request(method, "/static/js/main.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == PAGE_POLICY
    if method == "HEAD":
        assert response.content == b""


async def test_a_not_modified_answer_keeps_them_too(http: httpx.AsyncClient) -> None:
    first = await http.get("/static/js/main.js")
    again = await http.get("/static/js/main.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["x-content-type-options"] == "nosniff"
    assert again.headers["content-security-policy"] == PAGE_POLICY

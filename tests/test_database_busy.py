"""SQLite's writer lock held past its busy timeout is load (503 `server_busy`, worth a
retry), not a database outage: found by the soak benchmark at 1,000 streams."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import symposia.storage.db
from symposia.app import container_of, create_app
from tests.conftest import make_settings


@pytest.fixture
async def sqlite_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    monkeypatch.setattr(symposia.storage.db, "SQLITE_BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "busy.db"
    app = create_app(make_settings(database_url=f"sqlite:///{path}"))
    container = container_of(app)
    await container.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as client:
        yield client, path
    await container.shutdown()


async def test_a_held_sqlite_write_lock_is_server_busy(
    sqlite_client: tuple[httpx.AsyncClient, Path],
) -> None:
    client, path = sqlite_client
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        response = await client.post("/api/conversations", json={"title": "t"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert response.status_code == 503
    assert response.json()["code"] == "server_busy"
    assert response.headers["Retry-After"] == "1"
    # Once the lock is free the same request goes through: nothing was broken.
    again = await client.post("/api/conversations", json={"title": "t"})
    assert again.status_code == 201
    listing = await client.get("/api/conversations")
    assert [c["title"] for c in listing.json()["items"]] == ["t"]

"""Issue 25's proof across processes: two `symposia serve` workers on one PostgreSQL and
one Redis, one key, 50 streams at once whose combined worst case is 4x its budget.

The fake OpenAI upstream runs in the test, on loopback; each answer streams 4 tokens a
second apart, so every admission is decided while the first admitted are still
streaming. Money is exact (PRICES_FILE, nano-dollar counters): the admitted worst cases
fit the budget, the ledger's total is the sum of the actual costs the clients were
told, spend never passes the budget, nothing stays reserved. Then a worker is killed
mid-stream: its slice of the budget is charged (a `lost` ledger row) by the other when
its lease lapses, so the ledger still sums to the spend.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from symposia.governance.limits import to_nanos
from symposia.security.passwords import hash_password
from tests.fakes.databases import PostgresDatabases, pg_url
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.fakes.redis_server import require_redis_sync
from tests.fakes.workers import Cluster, Worker, worker_env

MODEL = "openai/gpt-4o-mini"
INPUT, OUTPUT = 0.001, 0.002
PROMPT = "x" * 40  # 11 prompt tokens as a budget counts them
MAX_TOKENS = 20
WORST = 11 * INPUT + MAX_TOKENS * OUTPUT
ACTUAL = 11 * INPUT + 4 * OUTPUT
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
LEASE_SECONDS = 3.0


@pytest.fixture
async def setup(
    postgres: PostgresDatabases, tmp_path: Path, fake_provider: FakeProviderServer
) -> AsyncIterator[tuple[Cluster, str]]:
    require_redis_sync()
    database = postgres.create()
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({MODEL: {"input": 1000, "output": 2000}}))
    env = worker_env(
        pg_url(database),
        DEV_MODE="false",
        BASIC_AUTH_USER="admin",
        BASIC_AUTH_PW_HASH=hash_password("pw", rounds=4),
        OPENAI_API_KEY="sk-test-openai",
        OPENAI_BASE_URL=fake_provider.openai_base_url,
        PRICES_FILE=str(prices),
        RATE_LIMIT_CHAT="100000/minute",
        LLM_RETRY_BASE_SECONDS="0.01",
        MAX_STREAMS_PER_PRINCIPAL="1000",
    )
    cluster = Cluster(env, tmp_path)
    try:
        yield cluster, database
    finally:
        await cluster.close()


async def _stream(client: httpx.AsyncClient, worker: Worker, key: str) -> tuple[int, Any]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with client.stream(
            "POST", f"{worker.base_url}/v1/chat/completions", json=body, headers=headers
        ) as response:
            raw = (await response.aread()).decode()
    except httpx.HTTPError as exc:  # its worker was killed
        return 0, type(exc).__name__
    if response.status_code != 200:
        return response.status_code, json.loads(raw)
    usage = None
    for line in raw.splitlines():
        if line.startswith("data: {"):
            usage = json.loads(line[6:]).get("usage") or usage
    return 200, usage


async def _counters(database: str, key_id: str) -> dict[str, int]:
    connection = await asyncpg.connect(pg_url(database))
    try:
        row = await connection.fetchrow(
            "SELECT spent_nanos, reserved_nanos, max_budget_nanos FROM key_limits "
            "WHERE key_id = $1",
            key_id,
        )
        ledger = await connection.fetchval(
            "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_ledger WHERE key_id = $1", key_id
        )
        rows = await connection.fetchval(
            "SELECT COUNT(*) FROM usage_ledger WHERE key_id = $1", key_id
        )
        held = await connection.fetchval(
            "SELECT COUNT(*) FROM key_reservations WHERE key_id = $1", key_id
        )
        lost = await connection.fetchval(
            "SELECT COUNT(*) FROM usage_ledger WHERE key_id = $1 AND status = 'lost'", key_id
        )
    finally:
        await connection.close()
    assert row is not None
    return {
        "spent": int(row["spent_nanos"]),
        "reserved": int(row["reserved_nanos"]),
        "budget": int(row["max_budget_nanos"]),
        "ledger": int(ledger),
        "rows": int(rows),
        "held": int(held),
        "lost": int(lost),
    }


async def _settled(database: str, key_id: str, rows: int, within: float = 20.0) -> dict[str, int]:
    """The counters once `rows` ledger rows are written and nothing is reserved."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await _counters(database, key_id)
        if (found["rows"] >= rows and found["reserved"] == 0 and found["held"] == 0) or (
            asyncio.get_running_loop().time() > deadline
        ):
            return found
        await asyncio.sleep(0.2)


async def _upstream_calls(fake: FakeProviderServer, count: int, within: float = 30.0) -> None:
    """Wait until the upstream has received `count` completion calls."""
    deadline = asyncio.get_running_loop().time() + within
    while sum(1 for r in fake.requests if r.path == "/v1/chat/completions") < count:
        assert asyncio.get_running_loop().time() < deadline, "the upstream was not called"
        await asyncio.sleep(0.05)


async def _new_key(worker: Worker, budget: float) -> tuple[str, str]:
    async with httpx.AsyncClient(timeout=30) as client:
        made = await client.post(
            f"{worker.base_url}/api/admin/keys",
            json={"name": "shared", "max_budget_usd": budget},
            headers=ADMIN,
        )
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


async def test_two_workers_hold_one_budget(
    setup: tuple[Cluster, str], fake_provider: FakeProviderServer
) -> None:
    cluster, database = setup
    one, two = cluster.add(), cluster.add()
    await cluster.start()
    fake_provider.responder = lambda request: Reply(delay=1.0)
    budget = 50 * WORST / 4
    key_id, key = await _new_key(one, budget)
    async with httpx.AsyncClient(timeout=60) as client:
        results = await asyncio.gather(
            *(_stream(client, (one, two)[i % 2], key) for i in range(50))
        )
    admitted = [usage for status, usage in results if status == 200]
    refused = [body for status, body in results if status == 429]
    assert len(admitted) + len(refused) == 50, (results, cluster.logs())
    assert 1 <= len(admitted) <= int(budget / WORST)
    assert all(b["error"]["code"] == "budget_exceeded" for b in refused)
    actual = sum(
        to_nanos(u["prompt_tokens"] * INPUT + u["completion_tokens"] * OUTPUT) for u in admitted
    )
    found = await _settled(database, key_id, len(admitted))
    assert (found["reserved"], found["held"]) == (0, 0), found
    assert found["rows"] == len(admitted)
    assert found["ledger"] == found["spent"] == actual == len(admitted) * to_nanos(ACTUAL)
    assert found["spent"] <= found["budget"] == to_nanos(budget)


async def test_a_killed_workers_reservations_are_released_after_their_lease(
    setup: tuple[Cluster, str], fake_provider: FakeProviderServer
) -> None:
    cluster, database = setup
    one, two = cluster.add(), cluster.add()
    await cluster.start()
    fake_provider.responder = lambda request: Reply(delay=1.0)
    budget = 50 * WORST / 4
    key_id, key = await _new_key(one, budget)
    async with httpx.AsyncClient(timeout=60) as client:
        # Worker two holds some of the budget for sure: its streams start first.
        calls = [asyncio.create_task(_stream(client, two, key)) for _ in range(6)]
        await _upstream_calls(fake_provider, 6)
        calls += [asyncio.create_task(_stream(client, (one, two)[i % 2], key)) for i in range(44)]
        await asyncio.sleep(1.0)  # every admission decided; the admitted mid-stream
        during = await _counters(database, key_id)
        assert min(during["reserved"], during["held"]) > 0, during
        two.kill()
        results = await asyncio.gather(*calls)
    survived = [usage for status, usage in results if status == 200]
    cut = [r for r in results if r[0] not in (200, 429)]
    assert cut, "the killed worker's streams were not cut"
    # Worker one's calls settle at once; worker two's reservations wait out their lease.
    found = await _settled(database, key_id, len(survived), within=LEASE_SECONDS * 5)
    assert (found["reserved"], found["held"]) == (0, 0), (found, cluster.logs())
    assert found["spent"] == found["ledger"]
    assert found["spent"] <= found["budget"]
    # What the killed worker may have spent is in the ledger: its slice, charged as lost.
    assert found["lost"] >= 1, found

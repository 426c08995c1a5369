"""Issue 25: keys that bound their holder, and the usage ledger.

The app runs in-process (httpx over ASGI) against the fake OpenAI upstream on loopback,
on SQLite and on the real PostgreSQL. Prices come from a PRICES_FILE so the money is
exact: $1,000 per million input tokens and $2,000 per million output tokens for
`openai/gpt-4o-mini` ($0.001 and $0.002 a token).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.governance.limits import to_nanos
from symposia.security.passwords import hash_password
from symposia.storage.tables import KeyLimitRow, KeyReservationRow, UsageRow
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer, Reply

MODEL = "openai/gpt-4o-mini"
INPUT, OUTPUT = 0.001, 0.002  # dollars a token
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
PROMPT = "x" * 40  # 11 prompt tokens as a budget counts them (40 // 4 + 1)
MAX_TOKENS = 20
WORST = 11 * INPUT + MAX_TOKENS * OUTPUT  # 0.051
ACTUAL = 11 * INPUT + 4 * OUTPUT  # the fake's usage: 11 prompt, 4 completion tokens


def prices_file(tmp_path: Path) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({MODEL: {"input": 1000, "output": 2000}}))
    return str(path)


@pytest.fixture
async def keyed_app(
    fake_provider: FakeProviderServer, database_url: str, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    settings = remote_settings(
        fake_provider,
        database_url=database_url,
        dev_mode=False,
        basic_auth_user="admin",
        basic_auth_pw_hash=hash_password("pw", rounds=4),
        rate_limit_chat="10000/minute",
        rate_limit_runs="1000/minute",
        prices_file=prices_file(tmp_path),
    )
    app = create_app(settings, default_providers(settings))
    container = container_of(app)
    await container.start()
    yield app
    await container.shutdown()


@pytest.fixture
async def http(keyed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=keyed_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://symposia.test", timeout=30
    ) as client:
        yield client


async def new_key(http: httpx.AsyncClient, **limits: Any) -> tuple[str, str]:
    made = await http.post("/api/admin/keys", json={"name": "team", **limits}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


def completions(fake: FakeProviderServer) -> int:
    """The completion calls the upstream received (not its model listings)."""
    return sum(1 for r in fake.requests if r.path == "/v1/chat/completions")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat_body(stream: bool = True, max_tokens: int | None = MAX_TOKENS) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


async def counters(container: Container, key_id: str) -> tuple[int, int, int]:
    """(spent, reserved, ledger total) in nano-dollars, after the ledger is written."""
    await container.meter.ledger.flush()
    sessions = container.meter.ledger.sessions
    async with sessions() as session:
        row = await session.get(KeyLimitRow, key_id)
        assert row is not None
        ledger = await session.scalar(
            select(func.coalesce(func.sum(UsageRow.cost_nanos), 0)).where(UsageRow.key_id == key_id)
        )
        held = await session.scalar(
            select(func.count())
            .select_from(KeyReservationRow)
            .where(KeyReservationRow.key_id == key_id)
        )
    assert held == 0 or row.reserved_nanos > 0
    return row.spent_nanos, row.reserved_nanos, int(ledger or 0)


async def stream_one(http: httpx.AsyncClient, key: str) -> tuple[int, dict[str, Any] | None]:
    """(status, the usage of the answer or the error body)."""
    async with http.stream(
        "POST", "/v1/chat/completions", json=chat_body(), headers=bearer(key)
    ) as response:
        raw = (await response.aread()).decode()
    if response.status_code != 200:
        return response.status_code, json.loads(raw)
    usage = None
    for line in raw.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
    return 200, usage


async def test_concurrent_streams_never_exceed_the_budget(
    http: httpx.AsyncClient, keyed_app: FastAPI, fake_provider: FakeProviderServer
) -> None:
    """50 streams at once whose combined worst case is 4x the budget: the admitted ones'
    worst cases fit, the ledger equals their actual costs, nothing stays reserved."""
    # Each answer takes 4 s: every admission is decided before any settles.
    fake_provider.responder = lambda request: Reply(delay=1.0)
    budget = 50 * WORST / 4
    key_id, key = await new_key(http, max_budget_usd=budget)
    results = await asyncio.gather(*(stream_one(http, key) for _ in range(50)))
    admitted = [usage for status, usage in results if status == 200]
    refused = [body for status, body in results if status == 429]
    assert len(admitted) + len(refused) == 50, results
    assert 1 <= len(admitted) <= int(budget / WORST), len(admitted)
    assert refused, "a budget 4x too small refused nothing"
    error = refused[0]["error"]
    assert error["type"] == "insufficient_quota"
    assert error["code"] == "budget_exceeded"
    assert "max_tokens that would fit" in error["message"]
    actual = sum(
        to_nanos(u["prompt_tokens"] * INPUT + u["completion_tokens"] * OUTPUT)
        for u in admitted
        if u is not None
    )
    container = container_of(keyed_app)
    spent, reserved, ledger = await counters(container, key_id)
    assert reserved == 0
    assert spent == ledger == actual == len(admitted) * to_nanos(ACTUAL)
    assert spent <= to_nanos(budget)
    assert completions(fake_provider) == len(admitted)  # refused: no upstream call


async def test_usage_reports_and_admin_only(
    http: httpx.AsyncClient, keyed_app: FastAPI, fake_provider: FakeProviderServer
) -> None:
    key_id, key = await new_key(http, max_budget_usd=1.0, budget_period="month")
    done = await http.post("/v1/chat/completions", json=chat_body(False), headers=bearer(key))
    assert done.status_code == 200, done.text
    await container_of(keyed_app).meter.ledger.flush()
    mine = (await http.get("/api/usage", headers=bearer(key))).json()
    assert mine["key"] == key_id
    assert mine["budget_period"] == "month"
    assert mine["spent_usd"] == pytest.approx(ACTUAL)
    assert mine["remaining_usd"] == pytest.approx(1.0 - ACTUAL)
    assert mine["by_model"][0]["model"] == MODEL
    assert mine["by_model"][0]["calls"] == 1
    assert len(mine["by_day"]) == 1
    # A key that is not an admin sees no admin routes at all.
    assert (await http.get("/api/admin/keys", headers=bearer(key))).status_code == 404
    assert (await http.get("/api/admin/usage", headers=bearer(key))).status_code == 404
    report = await http.get("/api/admin/usage?group_by=key,model", headers=ADMIN)
    assert report.json()["items"] == [
        {
            "key": key_id,
            "model": MODEL,
            "calls": 1,
            "prompt_tokens": 11,
            "completion_tokens": 4,
            "cost_usd": pytest.approx(ACTUAL),
        }
    ]
    as_csv = await http.get(
        "/api/admin/usage?group_by=key,model", headers={**ADMIN, "Accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0] == "key,model,calls,prompt_tokens,completion_tokens,cost_usd"
    assert as_csv.text.splitlines()[1].startswith(f"{key_id},{MODEL},1,11,4,")
    bad = await http.get("/api/admin/usage?group_by=colour", headers=ADMIN)
    assert bad.status_code == 422
    metrics = (await http.get("/metrics", headers=ADMIN)).text
    assert f'symposia_spend_usd_total{{key="{key_id}",model="{MODEL}"}}' in metrics


async def test_model_not_allowed_expired_and_rate_limited(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    _, key = await new_key(http, models=["anthropic/*"])
    refused = await http.post("/v1/chat/completions", json=chat_body(False), headers=bearer(key))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert MODEL in refused.json()["error"]["message"]
    run = await http.post(
        "/api/run",
        json={
            "topic": "t",
            "bots": [{"name": "Ada", "model": MODEL}, {"name": "Bo", "model": MODEL}],
            "max_turns": 2,
        },
        headers=bearer(key),
    )
    assert run.status_code == 403
    assert "bot Ada" in run.text

    expired_id, expired = await new_key(http)
    changed = await http.patch(
        f"/api/admin/keys/{expired_id}",
        json={"expires_at": "2000-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert changed.status_code == 200
    assert changed.json()["active"] is False
    gone = await http.post("/v1/chat/completions", json=chat_body(False), headers=bearer(expired))
    assert gone.status_code == 401

    _, limited = await new_key(http, rpm=2)
    statuses = []
    for _ in range(3):
        answer = await http.post(
            "/v1/chat/completions", json=chat_body(False), headers=bearer(limited)
        )
        statuses.append(answer.status_code)
    assert statuses == [200, 200, 429]
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.json()["error"]["code"] == "rpm_exceeded"
    assert completions(fake_provider) == 2


async def test_a_run_ends_when_its_key_budget_cannot_hold_a_turn(
    http: httpx.AsyncClient, keyed_app: FastAPI, fake_provider: FakeProviderServer
) -> None:
    """Budget for about one turn: the run ends `key_budget`, not in an error."""
    key_id, key = await new_key(http, max_budget_usd=0.02)
    made = await http.post(
        "/api/run",
        json={
            "topic": "tea",
            "bots": [
                {"name": "Ada", "model": MODEL, "max_tokens": 5},
                {"name": "Bo", "model": MODEL, "max_tokens": 5},
            ],
            "max_turns": 6,
        },
        headers=bearer(key),
    )
    assert made.status_code in (200, 201), made.text
    run_id = made.json()["id"]
    for _ in range(200):
        run = (await http.get(f"/api/run/{run_id}", headers=bearer(key))).json()
        if run["status"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.05)
    assert run["status"] == "completed", run
    assert run["ended_by"] == "key_budget"
    spent, reserved, ledger = await counters(container_of(keyed_app), key_id)
    assert reserved == 0
    assert spent == ledger <= to_nanos(0.02)


async def test_chat_replies_are_metered_and_refused_past_the_budget(
    http: httpx.AsyncClient, keyed_app: FastAPI, fake_provider: FakeProviderServer
) -> None:
    """A chat reply is a ledger row of surface `chat`; past the budget, the reply ends
    with an error event saying `budget_exceeded`, and the upstream is not called."""
    # A reply may take DEFAULT_MAX_TOKENS (256): its worst case is $0.011 + $0.512; the
    # budget holds one, not a second after the first's actual $0.019.
    worst = 11 * INPUT + 256 * OUTPUT
    key_id, key = await new_key(http, max_budget_usd=worst + 0.01)
    body = {"message": PROMPT, "model": MODEL}
    first = await http.post("/api/chat/stream", json=body, headers=bearer(key))
    assert first.status_code == 200, first.text
    assert "event: done" in first.text
    assert "budget_exceeded" not in first.text
    called = completions(fake_provider)
    second = await http.post("/api/chat/stream", json=body, headers=bearer(key))
    assert "budget_exceeded" in second.text
    assert completions(fake_provider) == called
    container = container_of(keyed_app)
    spent, reserved, ledger = await counters(container, key_id)
    assert reserved == 0
    assert spent == ledger > 0
    async with container.meter.ledger.sessions() as session:
        rows = list(await session.scalars(select(UsageRow).where(UsageRow.key_id == key_id)))
    assert [(r.surface, r.status) for r in rows] == [("chat", "ok")]
    assert rows[0].conversation_id is not None


async def test_a_selectors_choice_past_the_budget_ends_the_run(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    """The selector's own call is metered too: refused, the run ends `key_budget`."""
    _, key = await new_key(http, max_budget_usd=0.001)
    made = await http.post(
        "/api/run",
        json={
            "topic": "tea",
            "bots": [{"name": "Ada", "model": MODEL}, {"name": "Bo", "model": MODEL}],
            "max_turns": 4,
            "policy": "selector",
            "policy_config": {"model": MODEL},
        },
        headers=bearer(key),
    )
    assert made.status_code in (200, 201), made.text
    run_id = made.json()["id"]
    for _ in range(200):
        run = (await http.get(f"/api/run/{run_id}", headers=bearer(key))).json()
        if run["status"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.05)
    assert (run["status"], run["ended_by"]) == ("completed", "key_budget"), run
    assert completions(fake_provider) == 0


async def test_a_turn_refused_for_budget_leaves_no_empty_message(
    http: httpx.AsyncClient, keyed_app: FastAPI, fake_provider: FakeProviderServer
) -> None:
    """The turn the key cannot pay for is refused before it is recorded: the transcript
    holds the turns that were paid for, none empty, and the run's last event says why."""
    _, key = await new_key(http, max_budget_usd=0.02)
    made = await http.post(
        "/api/run",
        json={
            "topic": "tea",
            "bots": [
                {"name": "Ada", "model": MODEL, "max_tokens": 5},
                {"name": "Bo", "model": MODEL, "max_tokens": 5},
            ],
            "max_turns": 6,
        },
        headers=bearer(key),
    )
    assert made.status_code in (200, 201), made.text
    run_id = made.json()["id"]
    for _ in range(200):
        run = (await http.get(f"/api/run/{run_id}", headers=bearer(key))).json()
        if run["status"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.05)
    assert (run["status"], run["ended_by"]) == ("completed", "key_budget"), run
    exported = await http.get(f"/api/export/{run_id}.json", headers=bearer(key))
    assert exported.status_code == 200, exported.text
    messages = [m for m in exported.json()["messages"] if m["role"] == "assistant"]
    assert messages, exported.json()
    assert all(m["content"] and m["status"] == "complete" for m in messages), messages
    events = await container_of(keyed_app).log.read(run_id)
    starts = [e for e in events if e.type == "turn_start"]
    assert len(starts) == len(messages)  # no turn started that was not paid for
    last = events[-1] if events[-1].type == "run_status" else events[-2]
    assert last.data["ended_by"] == "key_budget"
    assert "budget" in last.data["reason"]

"""`POST /v1/chat/completions` is answered ahead of FastAPI's own layers (`api/hot_path`,
issue 23). Every answer must read as the full stack's: each case is sent to the app
with the hot path and to the same app without it."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.api.hot_path import HotPath, HotPathApp
from tests.test_lean_route import BAD_REQUESTS, CHAT, JSON

BIG = b'{"model": "scripted/echo", "pad": "' + b"x" * 1_100_000 + b'"}'
CASES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    **{name: ("POST", body, headers) for name, (body, headers) in BAD_REQUESTS.items()},
    "answer": ("POST", json.dumps(CHAT).encode(), JSON),
    "too large": ("POST", BIG, JSON),
    "another host": ("POST", json.dumps(CHAT).encode(), {**JSON, "host": "evil.test"}),
    "with an origin": ("POST", json.dumps(CHAT).encode(), {**JSON, "origin": "http://x.test"}),
    "GET": ("GET", b"", {}),
}
# Differ from one answer to the next whatever serves them.
VARYING = {"x-request-id", "date", "content-length"}


def _full_stack_only(app: FastAPI) -> None:
    assert isinstance(app, HotPathApp)
    app.hot_routes = []
    app.middleware_stack = None  # built again, without the hot path


async def _answer(app: FastAPI, method: str, body: bytes, headers: dict[str, str]) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        response = await c.request(method, "/v1/chat/completions", content=body, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k not in VARYING}
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text
    if isinstance(payload, dict) and payload.get("object") == "chat.completion":
        payload = payload["choices"]  # ids and times are new on every answer
    return response.status_code, kept, payload


async def test_every_answer_reads_as_the_full_stacks(app: FastAPI) -> None:
    hot = {name: await _answer(app, *case) for name, case in CASES.items()}
    assert isinstance(app.middleware_stack, HotPath)
    _full_stack_only(app)
    full = {name: await _answer(app, *case) for name, case in CASES.items()}
    assert not isinstance(app.middleware_stack, HotPath)
    for name in CASES:
        assert hot[name] == full[name], name
    assert hot["answer"][0] == 200


async def test_the_hot_route_skips_the_full_stack_and_is_logged_as_before(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await client.get("/health")).status_code == 200  # builds the stack
    stack = app.middleware_stack
    assert isinstance(stack, HotPath)

    async def refuse(*_: object) -> None:
        raise AssertionError("the full stack was used")

    stack._full = refuse
    with caplog.at_level(logging.INFO, logger="symposia.http"):
        response = await client.post("/v1/chat/completions", json=CHAT)
        assert (await client.post("/api/v1/chat/completions", json=CHAT)).status_code == 200
    assert response.status_code == 200
    assert response.headers["x-request-id"]
    routes = [getattr(r, "route", None) for r in caplog.records if r.getMessage() == "request"]
    assert routes == ["/v1/chat/completions", "/api/v1/chat/completions"]

"""`POST /v1/chat/completions` is served by `LeanRoute` (issue 23: FastAPI's dependency
solver cost a fifth of the relay's CPU). Its answers to bad requests must stay exactly
FastAPI's: each is compared with the same endpoint served as a plain FastAPI route."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from symposia.api import openai_compat
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.lean_route import LeanRoute

CHAT = {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}]}
JSON = {"content-type": "application/json"}
DEEP = '{"model": "scripted/echo", "messages": ' + "[" * 300 + "]" * 300 + "}"

BAD_REQUESTS: dict[str, tuple[bytes, dict[str, str]]] = {
    "not JSON": (b'{"model": ', JSON),
    "empty": (b"", JSON),
    "no content type": (json.dumps(CHAT).encode(), {}),
    "text/plain": (json.dumps(CHAT).encode(), {"content-type": "text/plain"}),
    "not UTF-8": (b'{"model": "scripted/echo", "x": "\xff\xfe"}', JSON),
    "NaN": (json.dumps({**CHAT, "temperature": float("nan")}).encode(), JSON),
    "huge integer": (json.dumps({**CHAT, "max_tokens": 10**30}).encode(), JSON),
    "UTF-16": (json.dumps({**CHAT, "n": 2}).encode("utf-16"), JSON),
    "too deep": (DEEP.encode(), JSON),
    "a list": (b"[1, 2]", JSON),
    "no messages": (b'{"model": "scripted/echo"}', JSON),
    "n > 1": (json.dumps({**CHAT, "n": 2}).encode(), JSON),
    "long header": (b'{"model": "x"}', {**JSON, "X-Symposia-Conversation": "c" * 65}),
    "unknown model": (json.dumps({**CHAT, "model": "nowhere/none"}).encode(), JSON),
}


def _lean_endpoint() -> Any:
    for route in openai_compat.routers[0].routes:
        if isinstance(route, LeanRoute):
            return route.endpoint
    raise AssertionError("no LeanRoute")


@pytest.fixture
async def twin(app: FastAPI) -> FastAPI:
    """The app, with the chat endpoint also served by FastAPI itself under `/v1/twin`."""
    plain = APIRouter(route_class=BoundedJsonRoute, prefix="/v1/twin")
    plain.add_api_route("/chat/completions", _lean_endpoint(), methods=["POST"])
    app.include_router(plain)
    return app


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_requests_are_answered_as_fastapi_answers_them(
    twin: FastAPI, client: httpx.AsyncClient, case: str
) -> None:
    content, headers = BAD_REQUESTS[case]
    lean = await client.post("/v1/chat/completions", content=content, headers=headers)
    plain = await client.post("/v1/twin/chat/completions", content=content, headers=headers)
    assert lean.status_code == plain.status_code, lean.text
    assert lean.status_code >= 400
    assert lean.json() == plain.json()


async def test_a_good_request_does_not_go_through_fastapis_solver(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(**_: object) -> None:
        raise AssertionError("FastAPI's dependency solver was called")

    monkeypatch.setattr("fastapi.routing.solve_dependencies", refuse)
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]


def test_an_endpoint_the_route_cannot_serve_is_refused_when_built() -> None:
    async def other(body: dict[str, Any], extra: int) -> None:
        pass

    with pytest.raises(TypeError, match="LeanRoute"):
        LeanRoute("/x", other, methods=["POST"])

"""Issue 22, point 1: JSON nested ~254 levels (2.5 KB) in a stored field was accepted, and
from then on every listing holding it answered 500 (pydantic's serializer stops at 255).

Every JSON body is now bounded in depth and size at the edge (a 422 naming the field; a
400 with `param` under `/v1`), and a document stored before reads back clipped instead of
breaking the list, the run, its exports and its branches.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from symposia.container import Container
from symposia.json_bounds import CLIPPED, MAX_JSON_DEPTH, MAX_JSON_VALUES
from symposia.storage.tables import ConversationRow, ResponseRow, RunRow
from tests.helpers import wait_done

BOTS = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
LEVELS = 300  # past the 255 where the read path broke


def deep(levels: int = LEVELS) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def _tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "scripted/echo", "messages": [{"role": "user", "content": "hi"}], **fields}


async def _export(client: httpx.AsyncClient) -> dict[str, Any]:
    run = (await client.post("/api/run", json={"topic": "t", "bots": BOTS, "max_turns": 1})).json()
    return dict((await client.get(f"/api/export/{run['id']}.json")).json())


DEEP_BODIES: list[tuple[str, str, Any, str]] = [
    ("run policy_config", "/api/run", {"topic": "t", "policy_config": deep()}, "policy_config"),
    ("run termination", "/api/run", {"topic": "t", "termination": deep()}, "termination"),
    (
        "conversation tools",
        "/api/conversations",
        {"default_model": "scripted/echo", "tools": [_tool(deep())]},
        "tools.0.function.parameters",
    ),
    ("unknown field", "/api/conversations", {"extra": deep()}, "extra.a.a.a"),
    (
        "v1 tools",
        "/v1/chat/completions",
        _chat(tools=[_tool(deep())]),
        "tools.0.function.parameters",
    ),
    (
        "v1 responses tools",
        "/v1/responses",
        {"model": "scripted/echo", "input": "hi", "tools": [_tool(deep())]},
        "tools.0.function.parameters",
    ),
    (
        "v1 responses input",
        "/v1/responses",
        {"model": "scripted/echo", "input": [{"role": "user", "content": deep()}]},
        "input.0.content.a",
    ),
    (
        "too many values",
        "/api/run",
        {"topic": "t", "policy_config": {"x": [0] * (MAX_JSON_VALUES + 1)}},
        "policy_config",
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "field"), DEEP_BODIES, ids=[b[0] for b in DEEP_BODIES]
)
async def test_a_body_nested_too_deep_is_refused_naming_the_field(
    client: httpx.AsyncClient, name: str, path: str, body: Any, field: str
) -> None:
    response = await client.post(path, json=body)
    if path.startswith("/v1"):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"].startswith(field)
    else:
        assert response.status_code == 422, response.text
        assert response.json()["field"].startswith(field)
    assert "nested deeper" in response.text or "values" in response.text
    assert (await client.get("/api/runs")).json()["items"] == []
    assert (await client.get("/api/conversations")).json()["items"] == []


async def test_an_imported_runs_deep_policy_config_is_refused(client: httpx.AsyncClient) -> None:
    document = await _export(client)
    imported = await client.post("/api/runs/import", json={**document, "policy_state": deep()})
    assert imported.status_code == 422, imported.text
    assert imported.json()["field"] == "policy_state.a.a.a"


async def test_depth_within_the_bound_is_accepted(client: httpx.AsyncClient) -> None:
    # The body is one level, `tools` a list, a tool and its function three more.
    parameters = deep(MAX_JSON_DEPTH - 5)
    created = await client.post(
        "/api/conversations", json={"default_model": "scripted/echo", "tools": [_tool(parameters)]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["tools"][0]["function"]["parameters"] == parameters
    refused = await client.post(
        "/api/conversations",
        json={"default_model": "scripted/echo", "tools": [_tool(deep(MAX_JSON_DEPTH - 4))]},
    )
    assert refused.status_code == 422


async def test_a_body_too_deep_for_the_parser_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    body = b'{"topic": "t", "policy_config": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post(
        "/api/run", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert (await client.get("/api/runs")).status_code == 200


async def test_documents_stored_before_the_bound_read_back_clipped(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Rows written before bodies were bounded: lists, the run, its exports and branches
    answer, the part too deep read as CLIPPED."""
    run = (await client.post("/api/run", json={"topic": "t", "bots": BOTS, "max_turns": 1})).json()
    await wait_done(container, run["id"])
    conversation = await client.post(
        "/api/conversations", json={"default_model": "scripted/echo", "tools": [_tool({})]}
    )
    response = await client.post("/v1/responses", json={"model": "scripted/echo", "input": "hi"})
    assert response.status_code == 200, response.text
    async with container.engine.begin() as connection:
        await connection.execute(
            update(RunRow).where(RunRow.id == run["id"]).values(policy_config=deep())
        )
        await connection.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation.json()["id"])
            .values(tools=[_tool(deep())])
        )
        await connection.execute(
            update(ResponseRow)
            .where(ResponseRow.id == response.json()["id"])
            .values(body={**response.json(), "metadata": deep()})
        )
    for path in (
        "/api/runs",
        f"/api/run/{run['id']}",
        f"/api/export/{run['id']}.json",
        f"/api/export/{run['id']}.md",
        "/api/conversations",
        f"/api/conversations/{conversation.json()['id']}",
        f"/api/conversations/{conversation.json()['id']}/export.json",
        f"/v1/responses/{response.json()['id']}",
    ):
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
    shown = (await client.get(f"/api/run/{run['id']}")).json()["policy_config"]
    for _ in range(MAX_JSON_DEPTH):
        shown = shown["a"]
    assert shown == CLIPPED
    branched = await client.post(f"/api/run/{run['id']}/branch", json={"at_turn": 0})
    assert branched.status_code in (201, 422), branched.text

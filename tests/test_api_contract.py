"""The API's contract: documented errors, full `Allow` on 405, one model-name rule,
upstream auth failures named as the server's, and error shapes for unreadable bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.errors import ProviderError
from symposia.providers.failures import from_status
from symposia.streaming.openai_errors import openai_error

HELLO = [{"role": "user", "content": "hello"}]
API_ERROR = "#/components/schemas/ApiError"
OPENAI_ERROR = "#/components/schemas/OpenAIError"


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    paths = app.openapi()["paths"]
    return [(method, path, op) for path, ops in paths.items() for method, op in ops.items()]


def _schema(operation: dict[str, Any], status: str) -> str:
    ref: str = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    return ref


def test_every_route_documents_its_errors_with_their_body(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        statuses = set(operation["responses"])
        if path in ("/health", "/metrics"):
            continue
        openai = path.startswith(("/v1/", "/api/v1/"))
        body = OPENAI_ERROR if openai else API_ERROR
        if not path.startswith("/auth/"):  # signing in and out needs no credentials
            assert {"401", "503"} <= statuses, (method, path)
        for status in statuses - {"200", "201", "204"}:
            assert _schema(operation, status) == body, (method, path, status)
        if "{" in path:
            assert "404" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= statuses, (method, path)
        takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
        assert ("422" in statuses) is (takes_input and not openai), (method, path)
    completions = app.openapi()["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"400", "404", "429", "502", "503", "504"} <= set(completions)
    assert "422" not in completions  # /v1 answers bad input with OpenAI's 400
    stop = app.openapi()["paths"]["/api/run/{run_id}/stop"]["post"]["responses"]
    assert "409" in stop


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/conversations/abc", "GET, PATCH, DELETE"),
        ("PUT", "/api/conversations", "GET, POST"),
        ("DELETE", "/api/run/abc/stop", "POST"),
        ("DELETE", "/v1/models", "GET"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    body = response.json()
    if path.startswith("/v1/"):
        assert body["error"]["code"] == "method_not_allowed"
    else:
        assert body["code"] == "method_not_allowed"


async def test_model_names_are_stripped_before_their_length_is_checked(
    client: httpx.AsyncClient,
) -> None:
    padded = "  scripted/echo\t "
    answer = await client.post("/v1/chat/completions", json={"model": padded, "messages": HELLO})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "scripted/echo"
    created = await client.post("/api/conversations", json={"default_model": padded})
    assert created.json()["default_model"] == "scripted/echo"
    run = await client.post(
        "/api/run",
        json={"topic": "t", "bots": [{"model": "scripted/echo", "fallbacks": [padded]}] * 2},
    )
    assert run.status_code == 201, run.text
    cid = created.json()["id"]
    await client.post(f"/api/conversations/{cid}/messages", json={"message": "hi"})
    streamed = await client.get(f"/api/conversations/{cid}/stream", params={"model": padded})
    assert streamed.status_code == 200, streamed.text
    # Whitespace does not count towards the length: too short or too long once stripped.
    for name in (" " * 10 + "a/", "a/" + "b" * 199 + " "):
        refused = await client.post("/v1/chat/completions", json={"model": name, "messages": HELLO})
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "model"
        refused = await client.post("/api/conversations", json={"default_model": name})
        assert refused.status_code == 422
        assert refused.json()["field"] == "default_model"


def test_an_upstream_401_on_v1_names_the_servers_configuration() -> None:
    failure = from_status(
        401, "bad key", provider="openai", model="gpt-4o", key_env="OPENAI_API_KEY"
    )
    status, body, _ = openai_error(ProviderError(failure))
    assert status == 502
    assert body["code"] == "upstream_authentication_failed"  # not invalid_api_key
    assert body["type"] == "server_error"
    assert "OPENAI_API_KEY" in body["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat/stream"])
async def test_a_body_that_is_not_utf8_is_a_400_in_the_routes_shape(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(
        path,
        content=b'{"model": "scripted/echo", "message": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    if path.startswith("/v1/"):
        assert body["error"]["type"] == "invalid_request_error"
        assert "UTF-8" in body["error"]["message"]
    else:
        assert body["code"] == "bad_request"
        assert "UTF-8" in body["message"]

"""What `/v1` sends, checked against OpenAI's published schemas (tests/openapi/openai_v1.json):
a completion, every chunk of a stream, every kind of error, the model list and one model.

The server runs as deployed (credentials, rate limits), against the scripted provider and
the fake OpenAI and Anthropic servers on loopback: no network.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.providers.scripted import ScriptedProvider
from tests.conftest import remote_settings
from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Reply
from tests.openapi.extract import ROOTS as SCHEMA_ROOTS
from tests.openapi.extract import referenced
from tests.openapi.schemas import conforms, spec

HELLO = [{"role": "user", "content": "hello world"}]
ROOTS = ["/v1", "/api/v1"]
MAX_BODY_BYTES = 4096
UPSTREAM_MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


def test_the_copy_holds_its_roots_and_all_they_reference_and_no_more() -> None:
    copy = spec()
    assert copy["x-source"]["repository"] == "https://github.com/openai/openai-openapi"
    assert len(copy["x-source"]["commit"]) == 40
    schemas = copy["components"]["schemas"]
    assert referenced(schemas, SCHEMA_ROOTS) == sorted(schemas)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is checked here is the wire format, not the storage."""
    return f"sqlite:///{tmp_path / 'symposia.db'}"


@pytest.fixture
async def deployed(
    fake_provider: FakeProviderServer, database_url: str, scripted: ScriptedProvider
) -> AsyncIterator[FastAPI]:
    settings = remote_settings(
        fake_provider,
        database_url=database_url,
        dev_mode=False,
        basic_auth_user="admin",
        basic_auth_pw_hash="$2b$04$" + "x" * 53,
        max_body_bytes=MAX_BODY_BYTES,
    )
    providers = default_providers(settings)
    providers.register(scripted)
    application = create_app(settings, providers)
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


@pytest.fixture
def container(deployed: FastAPI) -> Container:
    return container_of(deployed)


@pytest.fixture
async def http(deployed: FastAPI, container: Container) -> AsyncIterator[httpx.AsyncClient]:
    _, key = await container.api_keys.create("schema")
    # A bug of ours must come back as a response here, as it does to a real client.
    transport = httpx.ASGITransport(app=deployed, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://symposia.test", headers=headers
    ) as client:
        yield client


def _events(body: str) -> list[Any]:
    """The JSON payloads of an SSE body, and the final `[DONE]`."""
    events = []
    for event in body.removesuffix("\n\n").split("\n\n"):
        assert event.startswith("data: "), event
        payload = event.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def _openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    conforms("ErrorResponse", body)
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("model", ["scripted/echo", *UPSTREAM_MODELS.values()])
async def test_a_completion_is_a_create_chat_completion_response(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer, model: str
) -> None:
    provider = model.partition("/")[0]
    if provider in UPSTREAM_MODELS:
        fake_provider.enqueue(provider, Reply(tokens=["Up", "stream"]))
    response = await http.post("/v1/chat/completions", json={"model": model, "messages": HELLO})
    assert response.status_code == 200, response.text
    completion = response.json()
    conforms("CreateChatCompletionResponse", completion)
    assert completion["system_fingerprint"].startswith("fp_")


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("model", ["scripted/echo", *UPSTREAM_MODELS.values()])
async def test_every_stream_chunk_is_a_create_chat_completion_stream_response(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer, model: str, include_usage: bool
) -> None:
    provider = model.partition("/")[0]
    if provider in UPSTREAM_MODELS:
        fake_provider.enqueue(provider, Reply(tokens=["Up", "stream"]))
    body = {
        "model": model,
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    response = await http.post("/api/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    *chunks, done = _events(response.text)
    assert done == "[DONE]"
    assert len(chunks) >= 3  # the role, the text, the finish (and the usage)
    for chunk in chunks:
        conforms("CreateChatCompletionStreamResponse", chunk)
    (fingerprint,) = {chunk["system_fingerprint"] for chunk in chunks}  # one, a string
    assert fingerprint.startswith("fp_")
    assert ("usage" in chunks[-1] and chunks[-1]["choices"] == []) is include_usage


@pytest.mark.local_model
async def test_the_local_models_answers_are_openais_too(
    http: httpx.AsyncClient, container: Container
) -> None:
    if not container.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    body = {"model": "local/smollm2", "messages": HELLO, "max_tokens": 8, "temperature": 0}
    whole = await http.post("/v1/chat/completions", json=body)
    assert whole.status_code == 200, whole.text
    conforms("CreateChatCompletionResponse", whole.json())
    streamed = await http.post(
        "/v1/chat/completions",
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    *chunks, done = _events(streamed.text)
    assert done == "[DONE]"
    for chunk in chunks:
        conforms("CreateChatCompletionStreamResponse", chunk)


async def test_an_error_after_the_stream_began_is_an_error_response(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["a", "b", "c"], cut_after=2))
    body = {"model": UPSTREAM_MODELS["openai"], "messages": HELLO, "stream": True}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    *chunks, last = _events(response.text)
    for chunk in chunks:
        conforms("CreateChatCompletionStreamResponse", chunk)
    conforms("ErrorResponse", last)


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize(
    ("request_", "status", "code", "param"),
    [
        (
            ("POST", "/chat/completions", {"json": {"model": "scripted/echo"}}),
            400,
            None,
            "messages",
        ),
        (
            (
                "POST",
                "/chat/completions",
                {"json": {"model": "scripted/echo", "messages": HELLO, "temperature": 5}},
            ),
            400,
            None,
            "temperature",
        ),
        (
            ("POST", "/chat/completions", {"json": {"model": "scripted/echo", "messages": 3}}),
            400,
            None,
            "messages",
        ),
        (("POST", "/chat/completions", {"content": b"{not json"}), 400, None, None),
        (
            ("POST", "/chat/completions", {"json": {"model": "nope/x", "messages": HELLO}}),
            404,
            "model_not_found",
            None,
        ),
        (("POST", "/completions", {"json": {"model": "scripted/echo"}}), 404, "not_found", None),
        (("POST", "/embeddings", {"json": {"model": "x", "input": "y"}}), 404, "not_found", None),
        (("GET", "/foo", {}), 404, "not_found", None),
        (("GET", "", {}), 404, "not_found", None),
        (("GET", "/models/scripted/nope", {}), 404, "model_not_found", None),
        (("GET", "/models/nope", {}), 404, "model_not_found", None),
        (("GET", "/chat/completions", {}), 405, "method_not_allowed", None),
        (("POST", "/models", {}), 405, "method_not_allowed", None),
        (("POST", "/chat/completions", {"content": b"{" * (MAX_BODY_BYTES + 1)}), 413, None, None),
    ],
    ids=[
        "missing-field",
        "out-of-range",
        "wrong-type",
        "not-json",
        "unknown-model",
        "completions",
        "embeddings",
        "unknown-path",
        "root",
        "unknown-model-retrieved",
        "model-without-provider",
        "get-chat-completions",
        "post-models",
        "over-max-body-bytes",
    ],
)
async def test_client_errors_are_error_responses(
    http: httpx.AsyncClient,
    root: str,
    request_: tuple[str, str, dict[str, Any]],
    status: int,
    code: str | None,
    param: str | None,
) -> None:
    method, path, kwargs = request_
    response = await http.request(method, root + path, **kwargs)
    error = _openai_error(response, status)
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code
    assert error["param"] == param
    if status == 405:
        assert response.headers["allow"] == {"/chat/completions": "POST", "/models": "GET"}[path]


async def test_an_unknown_path_names_the_routes_that_exist(http: httpx.AsyncClient) -> None:
    error = _openai_error(await http.post("/v1/embeddings", json={}), 404)
    assert error["message"].startswith("Invalid URL (POST /v1/embeddings)")
    assert "POST /v1/chat/completions" in error["message"]
    assert "/api/v1/" not in error["message"]


@pytest.mark.parametrize("root", ROOTS)
async def test_a_body_over_the_limit_is_413_however_it_arrives(
    http: httpx.AsyncClient, root: str
) -> None:
    big = b'{"model": "scripted/echo", "messages": "' + b"x" * MAX_BODY_BYTES + b'"}'
    declared = await http.post(f"{root}/chat/completions", content=big)
    assert _openai_error(declared, 413)["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(big), 1024):
            yield big[start : start + 1024]

    streamed = await http.post(f"{root}/chat/completions", content=chunks())
    assert _openai_error(streamed, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize("authorization", [None, "Bearer sym_000000000000_" + "A" * 43, "Basic !!"])
async def test_authentication_errors_are_error_responses(
    http: httpx.AsyncClient, root: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (("GET", "/models"), ("GET", "/models/scripted/echo")):
        request = http.build_request(method, root + path, headers=headers)
        if authorization is None:
            del request.headers["authorization"]
        error = _openai_error(await http.send(request), 401)
        assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")


async def test_a_rate_limit_is_an_error_response_with_retry_after(
    http: httpx.AsyncClient, container: Container
) -> None:
    container.limiter._items["chat"] = __import__("limits").parse("1/minute")
    body = {"model": "scripted/echo", "messages": HELLO}
    assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
    limited = await http.post("/v1/chat/completions", json=body)
    assert _openai_error(limited, 429)["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) >= 1


async def test_an_upstream_failure_is_an_error_response(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", *[Reply(status=500)] * 3)
    body = {"model": UPSTREAM_MODELS["openai"], "messages": HELLO}
    error = _openai_error(await http.post("/v1/chat/completions", json=body), 502)
    assert error["type"] == "server_error"


async def test_a_bug_of_ours_is_an_error_response_on_v1_only(
    http: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(type(container.completions), "prepare", broken)
    body = {"model": "scripted/echo", "messages": HELLO}
    error = _openai_error(await http.post("/v1/chat/completions", json=body), 500)
    assert error["type"] == "server_error"
    assert "a bug" not in error["message"]
    elsewhere = await http.post("/api/chat/stream", json={"message": "hi"})
    assert elsewhere.status_code == 200  # /api is unchanged


async def test_the_model_list_and_each_model_are_openai_models(
    http: httpx.AsyncClient, container: Container
) -> None:
    for root in ROOTS:
        listing = await http.get(f"{root}/models")
        assert listing.status_code == 200
        conforms("ListModelsResponse", listing.json())
        ids = [model["id"] for model in listing.json()["data"]]
        assert {"scripted/echo", "openai/gpt-4o", "anthropic/claude-haiku-4-5"} <= set(ids)
        for model_id in ids:
            one = await http.get(f"{root}/models/{model_id}")
            assert one.status_code == 200, one.text
            conforms("Model", one.json())
            assert one.json() == next(m for m in listing.json()["data"] if m["id"] == model_id)


async def test_a_model_whose_provider_cannot_list_now_is_a_503_not_a_404(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.models_status = 500
    failed = await http.get("/v1/models/openai/gpt-4o")
    assert _openai_error(failed, 503)["type"] == "server_error"
    assert failed.headers["retry-after"] == "5"
    fake_provider.models_status = 200  # not cached: the next call lists again
    assert (await http.get("/v1/models/openai/gpt-4o")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/api/nope", {}, 404, "not_found"),
        ("GET", "/v10/models", {}, 404, "not_found"),
        ("GET", "/api/v1x/models", {}, 404, "not_found"),
        ("PUT", "/api/conversations", {}, 405, "method_not_allowed"),
        ("POST", "/api/run", {"content": b"{" * (MAX_BODY_BYTES + 1)}, 413, "payload_too_large"),
        ("POST", "/api/conversations", {"json": {"title": 3}}, 422, "invalid_input"),
    ],
)
async def test_routes_outside_v1_keep_symposias_own_error_shape(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = await http.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert "error" not in body
    assert body["code"] == code
    assert body["message"]


# The Responses API --------------------------------------------------------------------

RESPONSE_EVENTS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
}


def _typed_events(body: str) -> list[dict[str, Any]]:
    """The events of a Responses stream, each checked: `event:` names its `type`."""
    events = []
    for frame in body.removesuffix("\n\n").split("\n\n"):
        kind, data = frame.split("\n", 1)
        event = json.loads(data.removeprefix("data: "))
        assert kind == f"event: {event['type']}"
        events.append(event)
    return events


@pytest.mark.parametrize("model", ["scripted/echo", *UPSTREAM_MODELS.values()])
async def test_a_response_and_its_stream_events_follow_openais_schemas(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer, model: str
) -> None:
    provider = model.partition("/")[0]
    for _ in range(2):
        if provider in UPSTREAM_MODELS:
            fake_provider.enqueue(provider, Reply(tokens=["Up", "stream"]))
    body = {"model": model, "input": "hello", "instructions": "Be brief.", "metadata": {"a": "b"}}
    response = await http.post("/v1/responses", json=body)
    assert response.status_code == 200, response.text
    conforms("Response", response.json())
    stored = await http.get(f"/v1/responses/{response.json()['id']}")
    conforms("Response", stored.json())

    streamed = await http.post("/api/v1/responses", json={**body, "stream": True})
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = _typed_events(streamed.text)
    for event in events:
        conforms(RESPONSE_EVENTS[event["type"]], event)
    assert events[-1]["type"] == "response.completed"


async def test_an_incomplete_response_follows_the_schema(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["Cut"], finish_reason="length"))
    body = {"model": "openai/gpt-4o-mini", "input": "hello", "max_output_tokens": 1}
    streamed = await http.post("/v1/responses", json={**body, "stream": True})
    events = _typed_events(streamed.text)
    for event in events:
        conforms(RESPONSE_EVENTS[event["type"]], event)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


@pytest.mark.parametrize("route", sorted(UPSTREAM_MODELS))
async def test_a_function_call_response_and_its_events_follow_the_schemas(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer, route: str
) -> None:
    call = FakeToolCall("call_1", "get_weather", ('{"city"', ': "Paris"}'))
    fake_provider.enqueue(route, Reply(tokens=["Let me look."], tool_calls=[call]))
    fake_provider.enqueue(route, Reply(tokens=[], tool_calls=[call]))
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    body = {"model": UPSTREAM_MODELS[route], "input": "Weather?", "tools": [tool]}
    streamed = await http.post("/v1/responses", json={**body, "stream": True})
    events = _typed_events(streamed.text)
    for event in events:
        conforms(RESPONSE_EVENTS[event["type"]], event)
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    whole = await http.post("/v1/responses", json=body)
    conforms("Response", whole.json())
    assert [item["type"] for item in whole.json()["output"]] == ["function_call"]


async def test_a_response_whose_model_fails_mid_stream_ends_response_failed(
    http: httpx.AsyncClient, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(tokens=["One", " two", " three"], cut_after=2))
    body = {"model": "openai/gpt-4o-mini", "input": "hello", "stream": True}
    streamed = await http.post("/v1/responses", json=body)
    events = _typed_events(streamed.text)
    for event in events:
        conforms(RESPONSE_EVENTS[event["type"]], event)
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    assert failed["response"]["error"]["message"].startswith("stream_error: ")
    # What was said before the cut is kept in the failed response's output.
    assert failed["response"]["output"][0]["content"][0]["text"] == "One two"
    assert (await http.get(f"/v1/responses/{failed['response']['id']}")).status_code == 404

"""Schemathesis over the whole OpenAPI document: no 5xx, every status documented, every
response matching its schema.

Two runs: dev mode on SQLite, and an API key (DEV_MODE=false) on PostgreSQL, the key
created through the app's own `ApiKeyStore` and sent as `X-API-Key`. Models are the
scripted provider (`scripted/echo`, no delay), so nothing leaves the machine and a stream
ends as soon as its reply is written. Bounded in examples per operation so `make test`
stays short; schemathesis drives the app in-process through ASGI, in a thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from symposia.app import create_app
from symposia.security.api_keys import ApiKeyStore
from symposia.settings import Settings
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade
from tests.conftest import ISOLATED_ENV, make_settings
from tests.fakes.databases import PostgresDatabases, pg_url, truncate

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]
MODEL = "scripted/echo"


@dataclass(frozen=True)
class Target:
    app: FastAPI
    headers: dict[str, str]


async def _create_key(settings: Settings) -> str:
    """A key made by the app's own store, on its own engine (the app's runs in another loop)."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        _, key = await ApiKeyStore(session_factory(engine)).create("schemathesis")
        return key
    finally:
        await engine.dispose()


def _settings(mode: str, tmp: Path, postgres: PostgresDatabases | None) -> Settings:
    common = {
        "scripted_token_delay": 0.0,
        # The limiter has tests of its own; here every request reaches its route.
        "rate_limit_runs": "100000/minute",
        "rate_limit_chat": "100000/minute",
        "run_max_turns": 4,
        "max_concurrent_runs_per_principal": 1000,
    }
    if mode == "dev":
        return make_settings(database_url=f"sqlite:///{tmp / 'symposia.db'}", **common)
    assert postgres is not None
    name = postgres.create()
    asyncio.run(truncate(name))
    return make_settings(dev_mode=False, database_url=pg_url(name), **common)


@pytest.fixture(scope="module", params=["dev", "api_key"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    with pytest.MonkeyPatch.context() as env:
        for name in ISOLATED_ENV:
            env.delenv(name, raising=False)
        postgres = request.getfixturevalue("postgres") if request.param == "api_key" else None
        settings = _settings(request.param, tmp_path_factory.mktemp("schemathesis"), postgres)
        headers = {}
        if request.param == "api_key":
            headers["X-API-Key"] = asyncio.run(_create_key(settings))
        app = create_app(settings)
        try:
            # The first call starts the app's lifespan in schemathesis' ASGI thread.
            yield Target(app, headers)
        finally:
            asgi.shutdown_lifespans()


def _document() -> dict[str, Any]:
    """The OpenAPI document, the same whatever the settings (routes do not depend on them)."""
    return create_app(make_settings(database_url="sqlite://")).openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.hook("flatmap_body")
def _known_model_too(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """A random model name is only ever a 404: as often, name the scripted model instead,
    so the routes past the model check (streams, `/v1` completions) are explored too."""
    if not isinstance(body, dict) or "model" not in body:
        return st.just(body)
    return st.sampled_from([body, {**body, "model": MODEL}])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_keeps_its_contract(case: schemathesis.Case, target: Target) -> None:
    case.call_and_validate(app=target.app, headers=target.headers, checks=CHECKS, timeout=10)


def _json_operations() -> list[tuple[str, str]]:
    """Every operation of the document that takes a JSON body."""
    found = []
    for path, operations in _document()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), path))
    return found


def _deep(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture(scope="module")
def dev_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as env:
        for name in ISOLATED_ENV:
            env.delenv(name, raising=False)
        database = tmp_path_factory.mktemp("deep") / "symposia.db"
        with TestClient(create_app(make_settings(database_url=f"sqlite:///{database}"))) as c:
            yield c


@pytest.mark.parametrize(("method", "path"), _json_operations())
def test_every_json_body_is_bounded_in_depth(
    method: str, path: str, dev_client: TestClient
) -> None:
    """Issue 22: JSON nested ~254 levels in any body was accepted and stored, and broke
    every read of it after. Each operation taking JSON refuses it first, naming the field."""
    url = path.replace("{", "").replace("}", "")  # any id: the body is read first
    response = dev_client.request(method, url, json={"model": MODEL, "deep": _deep(300)})
    assert response.status_code in (400, 422), response.text
    assert "nested deeper than" in response.text
    assert "deep.a.a" in response.text

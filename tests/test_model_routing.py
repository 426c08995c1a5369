"""Issue 23, points 2 and 5: the model names clients and seeds use, routed by one resolver
(models file, bare names, OpenRouter's own names, doubled prefixes), and the model listing
refreshed on a miss, driven by real clients against the fake upstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Imported now: the Anthropic SDK's first import blocks the event loop for seconds on a
# loaded machine, long enough for the other providers' listings to time out.
import anthropic  # noqa: F401
import httpx
import openai
import pytest

from symposia.app import container_of, create_app
from symposia.container import Container, default_providers
from symposia.domain.models import TurnUsage
from symposia.errors import AmbiguousModelError
from symposia.services.models import MISS_REFRESH_SECONDS
from symposia.settings import SettingsError, load_settings
from tests.conftest import make_settings, remote_settings
from tests.fakes.live import LiveServer, start_live_server
from tests.fakes.provider_server import MODELS_PATH, FakeProviderServer, Reply
from tests.helpers import eventually

HELLO = [{"role": "user", "content": "hello"}]

MODELS_YAML = """\
models:
  gpt-3.5-turbo: openai/gpt-4o-mini
  fast:
    model: anthropic/claude-haiku-4-5
    defaults: {max_tokens: 77}
    price: {input: 1.5, output: 6}
  steady:
    model: openai/gpt-4o
    defaults: {temperature: 0.25, max_tokens: 33}
    fallbacks: [fast]
"""


@dataclass
class Gateway:
    server: LiveServer
    container: Container
    key: str
    fake: FakeProviderServer

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.key, base_url=f"{self.server.base_url}/v1", max_retries=0
        )

    def http(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.AsyncClient(base_url=self.server.base_url, headers=headers, timeout=30)

    def upstream_models(self, route: str = "openai") -> list[str]:
        return [r.body["model"] for r in self.fake.requests_to(route)]

    def listings(self) -> int:
        """The OpenAI-wire listings the fake answered (not Anthropic's)."""
        return sum(
            1
            for r in self.fake.requests
            if r.path == MODELS_PATH and "anthropic-version" not in r.headers
        )


Start = Callable[..., AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway(fake_provider: FakeProviderServer, tmp_path: Path) -> Start:
    """Starts the gateway over the fake upstream; `models` is the models file's text."""

    @asynccontextmanager
    async def start(models: str | None = None, **overrides: Any) -> AsyncIterator[Gateway]:
        if models is not None:
            path = tmp_path / "models.yaml"
            path.write_text(models)
            overrides["models_file"] = str(path)
        settings = remote_settings(
            fake_provider,
            database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
            dev_mode=False,
            basic_auth_user="admin",
            basic_auth_pw_hash="$2b$04$" + "x" * 53,
            rate_limit_chat="1000/minute",
            llm_max_attempts=1,
            **overrides,
        )
        app = create_app(settings, default_providers(settings))
        container = container_of(app)
        await container.start()
        try:
            _, key = await container.api_keys.create("routing")
            async with start_live_server(app) as live:
                yield Gateway(live, container, key, fake_provider)
        finally:
            await container.shutdown()

    return start


ONE_OPENAI = {"openrouter_api_key": None}  # OpenAI and Anthropic, no OpenRouter
OPENROUTER_ONLY = {"openai_api_key": None, "anthropic_api_key": None}


async def test_bare_names_route_to_the_one_provider_that_serves_them(gateway: Start) -> None:
    """openai-agents strips `openai/`; litellm sends `openai/…` for its `openai/openai/…`:
    each reaches the provider that serves the name, with the provider's own name."""
    async with gateway(**ONE_OPENAI) as gw, gw.client() as sdk:
        for name in ("gpt-4o", "openai/gpt-4o", "openai/openai/gpt-4o"):
            answer = await sdk.chat.completions.create(model=name, messages=HELLO)  # type: ignore[arg-type]
            assert answer.choices[0].message.content == "Hello, world!"
        assert gw.upstream_models() == ["gpt-4o"] * 3
        # Metrics know the model by its provider, whatever it was called.
        counted = 'symposia_tokens_streamed_total{model="gpt-4o",provider="openai"} 3.0'
        await eventually(lambda: counted in gw.container.metrics.render().decode())
        # A form rule, with no listing needed: `claude-…` is Anthropic's.
        answer = await sdk.chat.completions.create(model="claude-haiku-4-5", messages=HELLO)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "Hello, world!"
        assert gw.upstream_models("anthropic") == ["claude-haiku-4-5"]
        # Through the Responses API too.
        response = await sdk.responses.create(model="gpt-4o-mini", input="hello")
        assert response.output_text == "Hello, world!"
        assert gw.upstream_models()[-1] == "gpt-4o-mini"
        with pytest.raises(openai.NotFoundError, match="no configured provider offers"):
            await sdk.chat.completions.create(model="nonesuch", messages=HELLO)  # type: ignore[arg-type]


async def test_a_name_two_providers_list_is_a_400_naming_both(gateway: Start) -> None:
    # OpenAI and OpenRouter both point at the fake, so both list gpt-4o.
    async with gateway() as gw, gw.client() as sdk:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
        assert refused.value.code == "ambiguous_model"
        assert "openai/gpt-4o, openrouter/gpt-4o" in refused.value.message
        assert gw.fake.requests_to("openai") == []
        async with gw.http() as http:
            one = await http.get("/v1/models/gpt-4o")
            assert one.status_code == 400
            assert one.json()["error"]["code"] == "ambiguous_model"
            chat = await http.post("/api/chat/stream", json={"message": "hi", "model": "gpt-4o"})
            assert chat.status_code == 400  # /api too: a 400, not its usual 422
            assert chat.json()["code"] == "ambiguous_model"
        # Named with its provider, it is not ambiguous.
        await sdk.chat.completions.create(model="openrouter/gpt-4o", messages=HELLO)  # type: ignore[arg-type]


async def test_openrouters_own_names_reach_openrouter(gateway: Start) -> None:
    """`openai/gpt-3.5-turbo` with no OpenAI key but OpenRouter configured: OpenRouter's
    name, sent to it as it is."""
    gw_models = ["openai/gpt-3.5-turbo", "anthropic/claude-3-haiku"]
    async with gateway(**OPENROUTER_ONLY) as gw, gw.client() as sdk:
        gw.fake.openai_models = gw_models
        answer = await sdk.chat.completions.create(model="openai/gpt-3.5-turbo", messages=HELLO)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "Hello, world!"
        assert gw.upstream_models() == ["openai/gpt-3.5-turbo"]
        request = gw.fake.requests_to("openai")[0]
        assert request.headers["authorization"] == "Bearer sk-or-test"  # OpenRouter's key
        found = await sdk.models.retrieve("openai/gpt-3.5-turbo")
        assert found.id == "openrouter/openai/gpt-3.5-turbo"


async def test_an_openai_base_url_at_openrouter_gets_its_whole_name(gateway: Start) -> None:
    """OPENAI_BASE_URL at OpenRouter: `openai/gpt-4o` is sent as OpenRouter lists it."""
    async with gateway(**ONE_OPENAI) as gw, gw.client() as sdk:
        gw.fake.openai_models = ["openai/gpt-4o"]
        await sdk.models.list()  # the listing is known
        await sdk.chat.completions.create(model="openai/gpt-4o", messages=HELLO)  # type: ignore[arg-type]
        assert gw.upstream_models() == ["openai/gpt-4o"]


async def test_the_models_file_names_defaults_and_listing(gateway: Start) -> None:
    async with gateway(MODELS_YAML, **ONE_OPENAI) as gw, gw.client() as sdk:
        listed = [m.id async for m in sdk.models.list()]
        assert listed[:3] == ["gpt-3.5-turbo", "fast", "steady"]
        assert {"openai/gpt-4o", "anthropic/claude-haiku-4-5"} <= set(listed)
        assert (await sdk.models.retrieve("fast")).id == "fast"

        await sdk.chat.completions.create(model="gpt-3.5-turbo", messages=HELLO)  # type: ignore[arg-type]
        await sdk.chat.completions.create(model="steady", messages=HELLO)  # type: ignore[arg-type]
        await sdk.chat.completions.create(
            model="steady",
            messages=HELLO,  # type: ignore[arg-type]
            temperature=1.0,
            max_completion_tokens=5,
        )
        bodies = [r.body for r in gw.fake.requests_to("openai")]
        assert [b["model"] for b in bodies] == ["gpt-4o-mini", "gpt-4o", "gpt-4o"]
        assert "temperature" not in bodies[0]
        assert "max_tokens" not in bodies[0]
        assert (bodies[1]["temperature"], bodies[1]["max_tokens"]) == (0.25, 33)
        assert bodies[2]["temperature"] == 1.0  # what the client set wins
        assert 33 not in (bodies[2].get("max_tokens"), bodies[2].get("max_completion_tokens"))

        # The public name's price, and a bare name priced as its provider's model.
        prices = gw.container.runs.prices
        assert prices is not None
        assert prices.cost("fast", TurnUsage(1_000_000, 1_000_000)) == 7.5
        assert prices.price("gpt-4o") == prices.price("openai/gpt-4o") is not None


async def test_a_routes_fallbacks_stand_in_for_a_retryable_failure_only(gateway: Start) -> None:
    async with gateway(MODELS_YAML, **ONE_OPENAI) as gw, gw.client() as sdk:
        gw.fake.enqueue("openai", Reply(status=503))
        answer = await sdk.chat.completions.create(model="steady", messages=HELLO)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "Hello, world!"
        fallback = gw.fake.requests_to("anthropic")[0].body
        assert (fallback["model"], fallback["max_tokens"]) == ("claude-haiku-4-5", 77)

        gw.fake.enqueue("openai", Reply(status=400))
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(model="steady", messages=HELLO)  # type: ignore[arg-type]
        assert len(gw.fake.requests_to("anthropic")) == 1  # not tried for a bad request


async def test_langchain_and_pydantic_ai_name_symposia_models(gateway: Start) -> None:
    from langchain_openai import ChatOpenAI
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async with gateway(MODELS_YAML, **ONE_OPENAI) as gw, gw.client() as sdk:
        base = f"{gw.server.base_url}/v1"
        async with httpx.AsyncClient() as transport:  # closed here, not at exit
            for name in ("fast", "claude-haiku-4-5", "anthropic/claude-haiku-4-5"):
                chat = ChatOpenAI(
                    model=name,
                    base_url=base,
                    api_key=gw.key,  # type: ignore[arg-type]
                    max_retries=0,
                    http_async_client=transport,
                )
                assert (await chat.ainvoke("hello")).content == "Hello, world!"
        provider = OpenAIProvider(openai_client=sdk)
        for model in (
            OpenAIChatModel("gpt-3.5-turbo", provider=provider),
            OpenAIResponsesModel("gpt-4o", provider=provider),
        ):
            assert (await Agent(model).run("hello")).output == "Hello, world!"
        assert gw.upstream_models("anthropic") == ["claude-haiku-4-5"] * 3
        assert gw.upstream_models() == ["gpt-4o-mini", "gpt-4o"]


async def _finished(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        run: dict[str, Any] = (await http.get(f"/api/run/{run_id}")).json()
        if run["status"] not in ("pending", "running"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def test_runs_and_api_chat_take_the_same_names(gateway: Start) -> None:
    async with gateway(MODELS_YAML, **ONE_OPENAI) as gw, gw.http() as http:
        bots = [
            {"name": "A", "model": "fast", "system_prompt": "Be brief."},
            {"name": "B", "model": "gpt-4o-mini", "system_prompt": "Be brief."},
        ]
        created = await http.post("/api/run", json={"topic": "Tea", "bots": bots, "max_turns": 2})
        assert created.status_code == 201, created.text
        run = await _finished(http, created.json()["id"])
        assert run["status"] == "completed", run
        assert gw.upstream_models("anthropic") == ["claude-haiku-4-5"]
        assert gw.upstream_models() == ["gpt-4o-mini"]
        refused = await http.post(
            "/api/run",
            json={"topic": "Tea", "bots": [bots[0], {**bots[1], "model": "nonesuch"}]},
        )
        assert refused.status_code == 422
        assert refused.json()["field"] == "bots.1.model"
        async with http.stream(
            "POST", "/api/chat/stream", json={"message": "hello", "model": "claude-haiku-4-5"}
        ) as chat:
            assert chat.status_code == 200
            assert "Hello" in "".join([line async for line in chat.aiter_lines()])
        assert gw.upstream_models("anthropic") == ["claude-haiku-4-5"] * 2


async def test_default_model_may_be_a_bare_name(gateway: Start) -> None:
    assert load_settings(default_model="gpt-3.5-turbo").default_model == "gpt-3.5-turbo"
    async with gateway(MODELS_YAML, default_model="gpt-3.5-turbo", **ONE_OPENAI) as gw:
        async with (
            gw.http() as http,
            http.stream("POST", "/api/chat/stream", json={"message": "hello"}) as chat,
        ):
            assert chat.status_code == 200
            assert "Hello" in "".join([line async for line in chat.aiter_lines()])
        assert gw.upstream_models() == ["gpt-4o-mini"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fast: {model: nope}", "must be a provider/model"),
        ("fast: {model: a/b, defaults: {stop: x}}", "`defaults` may set"),
        ("fast: {model: a/b, price: {input: 1}}", "`price` needs numbers"),
        ("fast: {model: a/b, fallbacks: fast2}", "`fallbacks` must be a list"),
        ("a: {model: b/c}\nb/c: {model: d/e}", "itself a public name"),
        ("fast: [", "not valid YAML"),
    ],
)
def test_a_bad_models_file_stops_start_up_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=rf"MODELS_FILE.*{problem}"):
        load_settings(models_file=str(path))


def test_a_json_models_file_reads_too(tmp_path: Path) -> None:
    from symposia.providers.routes import load_routes

    path = tmp_path / "models.json"
    path.write_text(json.dumps({"fast": {"model": "openai/gpt-4o", "fallbacks": ["x/y"]}}))
    route = load_routes(str(path))["fast"]
    assert (route.target, route.fallbacks) == ("openai/gpt-4o", ("x/y",))


async def test_a_model_the_upstream_starts_to_offer_is_found_within_seconds(
    gateway: Start,
) -> None:
    now = [1000.0]
    async with gateway(**ONE_OPENAI) as gw, gw.http() as http:
        gw.container.models.clock = lambda: now[0]
        assert (await http.get("/v1/models/openai/gpt-4o")).status_code == 200
        assert gw.listings() == 1
        gw.fake.openai_models = ["gpt-4o", "gpt-5-new"]
        # Within MISS_REFRESH_SECONDS of the last listing, a miss asks no more.
        for _ in range(3):
            assert (await http.get("/v1/models/openai/gpt-5-new")).status_code == 404
        assert gw.listings() == 1
        now[0] += MISS_REFRESH_SECONDS
        assert (await http.get("/v1/models/openai/gpt-5-new")).status_code == 200
        assert gw.listings() == 2
        chat = {"model": "gpt-5-new", "messages": HELLO}  # a bare name, found the same way
        assert (await http.post("/v1/chat/completions", json=chat)).status_code == 200
        assert gw.listings() == 2  # a hit asks nothing
        # A refresh that fails is the listing's failure (503), not a server error.
        now[0] += MISS_REFRESH_SECONDS
        gw.fake.models_status = 500
        failed = await http.get("/v1/models/openai/gpt-6")
        assert failed.status_code == 503, failed.text
        assert failed.headers["retry-after"] == "5"


async def test_a_provider_with_no_model_route_answers_from_configuration(
    gateway: Start,
) -> None:
    async with gateway(MODELS_YAML, **ONE_OPENAI) as gw, gw.http() as http:
        gw.fake.models_status = 404
        for name in ("openai/gpt-4o", "openai/anything-new", "steady"):
            for _ in range(2):
                one = await http.get(f"/v1/models/{name}")
                assert one.status_code == 200, one.text
        listing = (await http.get("/v1/models")).json()["data"]
        assert "steady" in [m["id"] for m in listing]
        assert gw.listings() == 1  # the 404 is remembered, as a listing is


def test_the_resolver_alone(tmp_path: Path) -> None:
    """Without listings: the form rules, the doubled prefix, an unknown provider."""
    settings = make_settings(openai_api_key="sk-x", anthropic_api_key="sk-y")
    registry = default_providers(settings)
    assert registry.resolve("gpt-4o")[0].name == "openai"
    assert registry.resolve("o3-mini")[0].name == "openai"
    assert registry.resolve("claude-haiku-4-5")[0].name == "anthropic"
    assert registry.resolve("openai/openai/gpt-4o")[1] == "gpt-4o"
    assert registry.resolve("scripted/echo")[1] == "echo"
    registry.note_listing("openai", ["llama3"])
    registry.note_listing("anthropic", ["llama3"])
    with pytest.raises(AmbiguousModelError, match="openai/llama3, anthropic/llama3"):
        registry.resolve("llama3", field="bots.0.model")
    with pytest.raises(Exception, match="unknown provider 'nope'"):
        registry.resolve("nope/x")


def test_a_public_name_may_stand_for_another_providers_model(tmp_path: Path) -> None:
    from symposia.providers.pricing import PriceTable
    from symposia.providers.routes import load_routes

    path = tmp_path / "models.yaml"
    path.write_text("openai/gpt-4o-mini: openrouter/openai/gpt-4o-mini\ncheap: openai/gpt-4o\n")
    registry = default_providers(make_settings(openai_api_key="sk-x", openrouter_api_key="k"))
    registry.use_routes(load_routes(str(path)))
    provider, model = registry.resolve("openai/gpt-4o-mini")
    assert (provider.name, model) == ("openrouter", "openai/gpt-4o-mini")
    prices = PriceTable.load(None, registry.price_key)
    assert prices.price("cheap") == prices.price("openai/gpt-4o") is not None  # its target's

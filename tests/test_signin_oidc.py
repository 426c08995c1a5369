"""OpenID Connect sign-in end to end: the app and a small OpenID provider, both on loopback,
and one HTTP client following the redirects a browser would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.security.auth import check_exposure
from tests.fakes.live import LiveServer, start_live_server
from tests.fakes.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider, oidc_provider
from tests.test_security import PASSWORD, basic, secure_settings

RUN = {"topic": "tea", "max_turns": 1}


@dataclass
class Site:
    provider: FakeOidcProvider
    server: LiveServer
    container: Container


@pytest.fixture
async def site(tmp_path: Path, scripted: ScriptedProvider) -> AsyncIterator[Site]:
    async with oidc_provider() as provider:
        settings = secure_settings(
            f"sqlite:///{tmp_path / 's.db'}",
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_name="Test ID",
        )
        app = create_app(settings, ProviderRegistry([scripted]))
        await container_of(app).start()
        async with start_live_server(app) as server:
            yield Site(provider, server, container_of(app))
        await container_of(app).shutdown()


@pytest.fixture
async def browser(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=site.server.base_url, follow_redirects=True) as c:
        yield c


async def oidc_sign_in(client: httpx.AsyncClient, next_path: str = "/") -> httpx.Response:
    return await client.get("/auth/oidc/login", params={"next": next_path})


async def session_of(client: httpx.AsyncClient) -> dict[str, Any]:
    session: dict[str, Any] = (await client.get("/auth/session")).json()
    return session


async def test_sign_in_with_the_provider(site: Site, browser: httpx.AsyncClient) -> None:
    page = await browser.get("/signin")
    assert "Sign in with Test ID" in page.text
    response = await oidc_sign_in(browser, "/auth/session?from=oidc")
    hops = [urlsplit(str(r.url)).path for r in response.history]
    assert hops == ["/auth/oidc/login", "/authorize", "/auth/oidc/callback"]
    assert response.url.params["from"] == "oidc"  # `next` kept through the provider
    session = response.json()
    host = urlsplit(site.provider.issuer).netloc
    assert session["signed_in"] is True
    assert session["principal"] == {
        "id": f"oidc:{host}:ada-123",
        "kind": "oidc",
        "name": "ada@example.test",
    }
    assert session["methods"] == ["basic", "api_key", "oidc"]
    assert site.provider.token_requests == 1
    assert site.provider.codes == {}  # the code was spent


async def test_a_configured_redirect_url_is_sent_to_the_provider(
    site: Site, browser: httpx.AsyncClient
) -> None:
    site.container.settings.oidc_redirect_url = "https://symposia.example/auth/oidc/callback"
    login = await browser.get("/auth/oidc/login", follow_redirects=False)
    authorize = httpx.URL(login.headers["location"])
    assert authorize.params["redirect_uri"] == "https://symposia.example/auth/oidc/callback"


async def test_an_oidc_user_owns_what_they_create(site: Site, browser: httpx.AsyncClient) -> None:
    await oidc_sign_in(browser)
    token = {"X-CSRF-Token": (await session_of(browser))["csrf_token"]}
    created = await browser.post("/api/run", json=RUN, headers=token)
    assert created.status_code == 201
    run_id = created.json()["id"]
    assert (await browser.get(f"/api/run/{run_id}")).status_code == 200
    mine = (await browser.get("/api/runs")).json()["items"]
    assert [r["id"] for r in mine] == [run_id]
    async with httpx.AsyncClient(base_url=site.server.base_url) as other:
        alice = basic("alice", PASSWORD)
        assert (await other.get(f"/api/run/{run_id}", headers=alice)).status_code == 404
        assert (await other.get(f"/api/stream/{run_id}", headers=alice)).status_code == 404
        assert (await other.get(f"/api/stream/{run_id}")).status_code == 401
    # Another person of the same provider is another principal.
    site.provider.user = {"sub": "bob-456", "email": "bob@example.test"}
    async with httpx.AsyncClient(base_url=site.server.base_url, follow_redirects=True) as bob:
        await oidc_sign_in(bob)
        assert (await session_of(bob))["principal"]["name"] == "bob@example.test"
        assert (await bob.get(f"/api/run/{run_id}")).status_code == 404
        assert (await bob.get("/api/runs")).json()["items"] == []
    # Ada signing in again is the same principal: her run is still hers.
    site.provider.user = {"sub": "ada-123", "email": "ada@example.test"}
    async with httpx.AsyncClient(base_url=site.server.base_url, follow_redirects=True) as again:
        await oidc_sign_in(again)
        assert (await again.get(f"/api/run/{run_id}")).status_code == 200


async def test_a_callback_with_a_forged_state_is_refused(
    site: Site, browser: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=site.server.base_url) as step:
        login = await step.get("/auth/oidc/login")
        assert login.status_code == 302
        authorize = await step.get(login.headers["location"])
        callback = httpx.URL(authorize.headers["location"])
        forged = callback.copy_set_param("state", "forged")
        response = await step.get(forged.path, params=forged.params)
        assert response.status_code == 401
        assert "Sign-in with Test ID failed" in response.text
        assert (await session_of(step))["signed_in"] is False
        # A callback in a browser that never started the sign-in (no session) fails too.
        response = await browser.get(callback.path, params=callback.params)
        assert response.status_code == 401
        assert (await session_of(browser))["signed_in"] is False


async def test_an_id_token_for_another_client_is_refused(
    site: Site, browser: httpx.AsyncClient
) -> None:
    site.provider.user = {**site.provider.user, "aud": "someone-else"}
    response = await oidc_sign_in(browser)
    assert response.status_code == 401
    assert (await session_of(browser))["signed_in"] is False


async def test_without_oidc_configured_its_routes_are_404(tmp_path: Path) -> None:
    app = create_app(secure_settings(f"sqlite:///{tmp_path / 's.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
        assert (await c.get("/auth/oidc/login")).status_code == 404
        page = (await c.get("/signin")).text
        assert '<section hidden aria-labelledby="oidc-title">' in page


def oidc_only(tmp_path: Path, **overrides: Any) -> Any:
    return secure_settings(
        f"sqlite:///{tmp_path / 's.db'}",
        basic_auth_user=None,
        basic_auth_pw_hash=None,
        oidc_issuer="https://id.example",
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        **overrides,
    )


async def test_a_server_with_only_oidc_is_not_open(tmp_path: Path) -> None:
    """No Basic user and no key, but OIDC: everyone must sign in (no `local` principal),
    and such a server may listen beyond loopback."""
    app = create_app(oidc_only(tmp_path))
    await container_of(app).start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://symposia.test") as c:
            response = await c.get("/api/runs")
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer ")
    finally:
        await container_of(app).shutdown()
    check_exposure(oidc_only(tmp_path, host="0.0.0.0"), has_api_keys=False)  # no refusal

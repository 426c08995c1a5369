"""Who may open a WebSocket: the HTTP credentials, or a key in the first message; the
rest get an error frame and a 1008 close. Ownership and rate limits as over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from symposia.container import Container
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import LiveServer
from tests.helpers import wait_done
from tests.ws import command, events_until_done, next_frame, open_socket


@pytest.fixture
def settings() -> Settings:
    return make_settings(dev_mode=False, rate_limit_chat="3/minute", rate_limit_runs="100/minute")


@pytest.fixture
async def key(container: Container) -> str:
    _, plain = await container.api_keys.create("ws")
    return plain


@pytest.fixture
async def run_id(live: LiveServer, key: str, container: Container) -> str:
    async with httpx.AsyncClient(base_url=live.base_url, headers={"X-API-Key": key}) as http:
        bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
        created = await http.post("/api/run", json={"topic": "t", "max_turns": 2, "bots": bots})
        assert created.status_code == 201, created.text
    run: str = created.json()["id"]
    await wait_done(container, run)
    return run


async def refused(live: LiveServer, path: str, **options: Any) -> tuple[dict[str, Any], int]:
    """The error frame a refused socket gets, and its close code."""
    first = options.pop("first", None)
    async with open_socket(live, path, **options) as ws:
        if first is not None:
            await ws.send(json.dumps(first))
        frame = await next_frame(ws)
        with pytest.raises(ConnectionClosed):
            await next_frame(ws)
        assert ws.close_code is not None
        return frame, ws.close_code


@pytest.mark.parametrize("scheme", ["X-API-Key", "Authorization"])
async def test_a_key_in_the_handshake_headers(
    live: LiveServer, key: str, run_id: str, scheme: str
) -> None:
    headers = {scheme: key if scheme == "X-API-Key" else f"Bearer {key}"}
    async with open_socket(live, f"/api/ws/runs/{run_id}?after=0", headers) as ws:
        assert (await events_until_done(ws))[-1]["event"] == "done"


async def test_a_key_in_the_first_message(live: LiveServer, key: str, run_id: str) -> None:
    async with open_socket(live, f"/api/ws/runs/{run_id}") as ws:
        ack = await command(ws, type="auth", ref="a", api_key=key)
        assert (ack["type"], ack["command"]) == ("ack", "auth")
        assert (await command(ws, type="subscribe", ref="s"))["type"] == "ack"
        assert (await events_until_done(ws))[-1]["event"] == "done"


@pytest.mark.parametrize(
    ("headers", "first"),
    [
        (None, {"type": "subscribe"}),
        (None, {"type": "auth", "api_key": "sym_nope_nope"}),
        ({"X-API-Key": "sym_nope_nope"}, None),
    ],
    ids=["no-credentials", "wrong-key-message", "wrong-key-header"],
)
async def test_no_or_wrong_credentials_get_401_then_1008(
    live: LiveServer, run_id: str, headers: dict[str, str] | None, first: dict[str, Any] | None
) -> None:
    frame, code = await refused(live, f"/api/ws/runs/{run_id}", headers=headers, first=first)
    assert (frame["type"], frame["status"], frame["code"]) == ("error", 401, "unauthorized")
    assert code == 1008


async def test_another_principals_run_is_not_found(
    live: LiveServer, container: Container, run_id: str
) -> None:
    _, other = await container.api_keys.create("other")
    async with open_socket(live, f"/api/ws/runs/{run_id}", {"X-API-Key": other}) as ws:
        for kind in ("subscribe", "stop"):
            answer = await command(ws, type=kind, ref=kind)
            assert (answer["status"], answer["code"]) == (404, "not_found")


async def test_rate_limits_are_the_http_routes(live: LiveServer, key: str) -> None:
    """`chat`: 3 a minute; a conversation's message and subscribe each count, as their
    HTTP routes do, and HTTP sees the same budget."""
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers) as http:
        created = await http.post("/api/conversations", json={"title": "t"})
        conversation = created.json()["id"]
        async with open_socket(live, f"/api/ws/conversations/{conversation}", headers) as ws:
            sent = await command(ws, type="message", ref=1, body={"message": "hi"})
            assert sent["type"] == "ack"
            assert (await command(ws, type="subscribe", ref=2))["type"] == "ack"
            await events_until_done(ws)
            assert (
                await http.post(
                    f"/api/conversations/{conversation}/messages", json={"message": "again"}
                )
            ).status_code == 201
            over = await command(ws, type="subscribe", ref=3)
            assert (over["status"], over["code"]) == (429, "rate_limited")
            assert over["retry_after"] > 0
        answer = await http.get(f"/api/conversations/{conversation}/stream")
        assert answer.status_code == 429


async def test_a_cross_site_page_cannot_ride_ambient_credentials(tmp_path: Any) -> None:
    """No credentials configured (open on loopback): a page of another site must not
    open a socket as the local user; this site's own page and non-browsers may."""
    from symposia.app import container_of, create_app
    from tests.fakes.live import start_live_server

    app = create_app(make_settings(dev_mode=False))
    await container_of(app).start()
    try:
        async with start_live_server(app) as live:
            host = f"127.0.0.1:{live.port}"
            evil = {"Origin": "https://evil.example"}
            frame, code = await refused(
                live, "/api/ws/runs/x", headers=evil, first={"type": "subscribe"}
            )
            assert (frame["status"], code) == (401, 1008)
            for origin in (f"http://{host}", None):
                headers = {"Origin": origin} if origin else None
                async with open_socket(live, "/api/ws/runs/x", headers) as ws:
                    answer = await command(ws, type="subscribe", ref=1)
                    assert (answer["status"], answer["code"]) == (404, "not_found")
    finally:
        await container_of(app).shutdown()


async def test_a_browser_session_cookie_opens_a_socket_from_its_own_site_only(
    live: LiveServer, key: str, run_id: str
) -> None:
    """The cookie a browser got at /signin authenticates a socket as it does HTTP; a page of
    another site cannot ride it (cross-site WebSocket hijacking)."""
    from symposia.security.sessions import COOKIE_NAME
    from tests.test_sessions import sign_in

    async with httpx.AsyncClient(base_url=live.base_url) as browser:
        assert (await sign_in(browser, method="api_key", api_key=key)).status_code == 303
        cookie = {"Cookie": f"{COOKIE_NAME}={browser.cookies[COOKIE_NAME]}"}
    own_site = {**cookie, "Origin": f"http://127.0.0.1:{live.port}"}
    async with open_socket(live, f"/api/ws/runs/{run_id}", own_site) as ws:
        answer = await command(ws, type="subscribe", ref=1)
        assert answer["type"] == "ack", answer
        kinds = [frame["event"] for frame in await events_until_done(ws)]
        assert kinds[-1] == "done"
    frame, code = await refused(
        live,
        f"/api/ws/runs/{run_id}",
        headers={**cookie, "Origin": "https://evil.example"},
        first={"type": "subscribe"},
    )
    assert (frame["status"], code) == (401, 1008)
    frame, code = await refused(live, f"/api/ws/runs/{run_id}", first={"type": "subscribe"})
    assert (frame["status"], code) == (401, 1008)  # and without the cookie, nothing

"""DNS rebinding (issue 22 point 2): a page whose domain is made to resolve to this machine
talks to the server with `Host: its.domain`. Only allowed host names are served, over HTTP
and WebSocket, and a browser's Origin is checked against configured origins, not the Host.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from symposia.security.auth import StartupRefusedError, check_exposure
from symposia.security.hosts import AllowedHosts, HostPolicy, host_name
from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import LiveServer, start_live_server
from tests.test_ws_auth import refused
from tests.ws import command, open_socket


def open_settings(**overrides: object) -> Settings:
    """An open server (no credentials) on loopback with the default host names: the one a
    rebinding page can drive."""
    values: dict[str, object] = {"dev_mode": False, "allowed_hosts": []}
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
async def open_app(tmp_path: object) -> AsyncIterator[FastAPI]:
    app = create_app(
        open_settings(database_url=f"sqlite:///{tmp_path}/h.db"),
        ProviderRegistry([ScriptedProvider(token_delay=0.0)]),
    )
    await container_of(app).start()
    yield app
    await container_of(app).shutdown()


@pytest.fixture
async def open_live(open_app: FastAPI) -> AsyncIterator[LiveServer]:
    async with start_live_server(open_app) as server:
        yield server


async def _get(app: FastAPI, host: str, path: str = "/api/runs") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        return await client.get(path)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
async def test_http_for_another_host_name_is_refused(open_app: FastAPI, host: str) -> None:
    for path in ("/api/runs", "/health", "/", "/v1/models"):
        response = await _get(open_app, host, path)
        assert response.status_code == 400, (host, path)
        assert response.headers["content-type"].startswith("text/plain")
        assert "ALLOWED_HOSTS" in response.text
        assert "x-request-id" in response.headers  # logged and counted like any request


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:9", "[::1]:8000"])
async def test_the_loopback_names_are_served_by_default(open_app: FastAPI, host: str) -> None:
    assert (await _get(open_app, host)).status_code == 200


async def test_listed_names_are_served_and_star_serves_any() -> None:
    listed = make_settings(allowed_hosts=["Symposia.Example.com", "::1"])
    assert listed.allowed_host_names == {
        "symposia.example.com",
        "[::1]",
        "localhost",
        "127.0.0.1",
    }
    assert make_settings(allowed_hosts=["*"]).allowed_host_names is None
    assert host_name("Symposia.Example.com:443") == "symposia.example.com"
    assert host_name("[::1]:80") == "[::1]"
    app = FastAPI()
    app.add_api_route("/health", lambda: {"ok": True})
    app.add_middleware(AllowedHosts, policy=HostPolicy(listed))
    assert (await _get(app, "symposia.example.com:8443", "/health")).status_code == 200
    assert (await _get(app, "other.example.com", "/health")).status_code == 400


def test_beyond_loopback_the_default_is_addresses_and_this_machine() -> None:
    """A public HOST with ALLOWED_HOSTS unset: any IP address literal (a rebinding page
    always has a domain name), this machine's name and the loopback names; no other name."""
    policy = HostPolicy(make_settings(host="0.0.0.0", allowed_hosts=[]))
    assert policy.allows("192.0.2.7")
    assert policy.allows("[2001:db8::1]")
    assert policy.allows("localhost")
    assert policy.allows(os.uname().nodename.lower())
    assert not policy.allows("evil.example")


def test_star_on_an_open_server_is_refused_at_start() -> None:
    with pytest.raises(StartupRefusedError, match="DNS rebinding"):
        check_exposure(open_settings(allowed_hosts=["*"]), has_api_keys=False)
    check_exposure(open_settings(allowed_hosts=["*"]), has_api_keys=True)
    check_exposure(open_settings(allowed_hosts=["*"], dev_mode=True), has_api_keys=False)


async def _handshake(live: LiveServer, host: str, origin: str | None = None) -> bytes:
    """A raw WebSocket handshake with this Host: the server's status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /api/ws/runs/x HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    async with asyncio.timeout(5):
        status = await reader.readline()
    writer.close()
    return status


async def test_a_websocket_for_another_host_name_is_refused(open_live: LiveServer) -> None:
    port = open_live.port
    for host in (f"evil.example:{port}", "rebind.test"):
        status = await _handshake(open_live, host, origin=f"http://{host}")
        assert status.startswith(b"HTTP/1.1 400"), status
    status = await _handshake(open_live, f"localhost:{port}", origin=f"http://localhost:{port}")
    assert status.startswith(b"HTTP/1.1 101"), status


async def test_websocket_origins_are_the_configured_ones_not_the_host(
    open_live: LiveServer,
) -> None:
    """A page of an allowed host (another port: a dev server) may open a socket; a page
    of a name that is not allowed may not, whatever Host it reaches the server by."""
    path = "/api/ws/runs/x"
    async with open_socket(open_live, path, {"Origin": "http://localhost:5173"}) as ws:
        answer = await command(ws, type="subscribe", ref=1)
        assert (answer["status"], answer["code"]) == (404, "not_found")  # as `local`
    evil = {"Origin": "http://evil.example"}
    frame, code = await refused(open_live, path, headers=evil, first={"type": "subscribe"})
    assert (frame["status"], code) == (401, 1008)  # no ambient `local` for another site

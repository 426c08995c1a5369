"""A small WebSocket client for tests (the `websockets` package against the live server),
and the fixtures the WebSocket tests share (a module takes them as `settings = ws.settings`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from symposia.settings import Settings
from tests.conftest import make_settings
from tests.fakes.live import LiveServer


@pytest.fixture
def settings() -> Settings:
    """Heartbeats and send timeouts short enough for a test to see."""
    return make_settings(sse_heartbeat_seconds=0.2, sse_send_timeout=1.0)


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as client:
        yield client


def ws_url(live: LiveServer, path: str) -> str:
    return f"ws://127.0.0.1:{live.port}{path}"


@asynccontextmanager
async def open_socket(
    live: LiveServer, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(live, path), additional_headers=headers, open_timeout=5) as ws:
        yield ws


FRAME_TIMEOUT_SECONDS = 10.0


async def next_frame(ws: ClientConnection, skip_heartbeats: bool = True) -> dict[str, Any]:
    while True:
        async with asyncio.timeout(FRAME_TIMEOUT_SECONDS):
            frame: dict[str, Any] = json.loads(await ws.recv())
        if not (skip_heartbeats and frame["type"] == "heartbeat"):
            return frame


async def events_until_done(
    ws: ClientConnection, stop_after: int | None = None
) -> list[dict[str, Any]]:
    """Event frames until `done` (or `stop_after` of them); other frames are skipped."""
    out: list[dict[str, Any]] = []
    while True:
        frame = await next_frame(ws)
        if frame["type"] != "event":
            continue
        out.append(frame)
        if frame["event"] == "done" or (stop_after is not None and len(out) >= stop_after):
            return out


async def command(
    ws: ClientConnection, seen: list[dict[str, Any]] | None = None, **message: Any
) -> dict[str, Any]:
    """Send one command and return its answer (`ack` or `error` with the same ref); the
    frames arriving meanwhile go to `seen`."""
    await ws.send(json.dumps(message))
    while True:
        frame = await next_frame(ws)
        if frame["type"] in ("ack", "error") and frame.get("ref") == message.get("ref"):
            return frame
        if seen is not None:
            seen.append(frame)

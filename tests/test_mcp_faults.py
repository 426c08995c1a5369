"""Issue 27: what goes wrong on an MCP server becomes a result the model reads, never a
failed turn: a slow tool (timeout), a crash mid-call (then a restart with backoff), a 10 MB
answer (capped), a raised error, bad arguments; a tool list change is seen on next use.
Against a small MCPServer of ours (tests/mcp/fault_server.py) and PyPI's mcp-server-time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from symposia.providers.base import ToolCall
from symposia.tools.config import McpConfigError, load_servers, parse_servers
from symposia.tools.servers import ToolServers
from symposia.tools.toolbox import DENIED, Toolbox
from tests.fakes.live import free_port
from tests.mcp_servers import node_server

FAULTS = str(Path(__file__).parent / "mcp" / "fault_server.py")


@pytest.fixture
async def servers() -> AsyncIterator[ToolServers]:
    configs = parse_servers(
        {
            "faults": {"command": sys.executable, "args": [FAULTS]},
            "time": {
                "command": sys.executable,
                "args": ["-m", "mcp_server_time"],
                "require_approval": {"convert_time": "always"},
            },
        }
    )
    pool = ToolServers.of(configs, call_timeout=30, max_result_chars=1000)
    yield pool
    await pool.aclose()


def _call(name: str, arguments: object = None) -> ToolCall:
    return ToolCall(f"c-{name}", name, json.dumps(arguments or {}))


async def test_faults_come_back_as_error_results(servers: ToolServers) -> None:
    box = await Toolbox.of(servers, ["faults"])
    assert set(box.entries) >= {"faults__echo", "faults__slow", "faults__crash"}
    ok = await box.run(_call("faults__echo", {"text": "hi"}))
    assert (ok.content, ok.is_error) == ("echo: hi", False)

    failed = await box.run(_call("faults__fail"))
    assert failed.is_error
    assert "fail" in failed.content

    servers.call_timeout = 120  # ten megabytes through a pipe, on a busy machine
    huge = await box.run(_call("faults__huge"))
    assert not huge.is_error
    assert huge.content.startswith("y" * 1000)
    assert huge.content.endswith(f"[truncated: {10 * 1024 * 1024 - 1000} more characters]")

    bad = await box.run(ToolCall("c-bad", "faults__echo", "[1, 2]"))
    assert (bad.content, bad.is_error) == ("The arguments are not a JSON object.", True)

    servers.call_timeout = 0.5
    slow = await box.run(_call("faults__slow", {"seconds": 5}))
    assert slow.is_error
    assert "did not answer within 0.5 s" in slow.content
    assert 400 <= slow.duration_ms < 3000


async def test_a_crash_mid_call_is_an_error_then_the_server_restarts(
    servers: ToolServers,
) -> None:
    box = await Toolbox.of(servers, ["faults.crash", "faults.echo"])
    assert set(box.entries) == {"faults__crash", "faults__echo"}
    crashed = await box.run(_call("faults__crash"))
    assert crashed.is_error
    assert "stopped during the call" in crashed.content
    server = servers.get("faults")
    assert server is not None
    assert server.health()["state"] == "backing_off"
    assert server.restarts == 1
    early = await box.run(_call("faults__echo", {"text": "too soon"}))
    assert early.is_error
    assert "restarting" in early.content
    await asyncio.sleep(0.6)  # the first backoff
    again = await box.run(_call("faults__echo", {"text": "back"}))
    assert (again.content, again.is_error) == ("echo: back", False)
    assert server.health()["state"] == "running"


async def test_a_tool_list_change_is_listed_again(servers: ToolServers) -> None:
    server = servers.get("faults")
    assert server is not None
    before = {t.name for t in await server.tools()}
    assert "added" not in before
    box = await Toolbox.of(servers, ["faults"])
    grown = await box.run(_call("faults__grow"))
    assert grown.content == "grown"
    for _ in range(50):  # the notification arrives on the session's own task
        if server._tools is None:
            break
        await asyncio.sleep(0.05)
    assert "added" in {t.name for t in await server.tools()}


async def test_a_real_server_and_approval_rules(servers: ToolServers) -> None:
    box = await Toolbox.of(servers, ["time"])
    now = await box.run(_call("time__get_current_time", {"timezone": "UTC"}))
    assert not now.is_error
    assert json.loads(now.content)["timezone"] == "UTC"
    arguments = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    # Needs approval; with no one to ask, it is denied and not run.
    denied = await box.run(_call("time__convert_time", arguments))
    assert (denied.content, denied.is_error) == (DENIED, True)
    asked: list[str] = []

    async def approve(call: object) -> bool:
        asked.append(getattr(call, "tool", ""))
        return True

    box.approver = approve
    converted = await box.run(_call("time__convert_time", arguments))
    assert not converted.is_error
    assert "Asia/Tokyo" in converted.content
    assert asked == ["convert_time"]


def test_the_servers_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "servers.yaml"
    good.write_text("time:\n  command: python\n  args: [-m, mcp_server_time]\n")
    assert load_servers(good)["time"].transport == "stdio"
    for body, said in [
        ({"x": {}}, "either `command`"),
        ({"x": {"command": "a", "url": "http://h/mcp"}}, "either `command`"),
        ({"bad name": {"command": "a"}}, "server name"),
        ({"x": {"url": "ftp://h"}}, "http"),
        ({"x": {"command": "a", "shell": True}}, "'x' shell: Extra inputs"),
    ]:
        with pytest.raises(McpConfigError, match=said):
            parse_servers(body)
    broken = tmp_path / "servers.json"
    broken.write_text("{")
    with pytest.raises(McpConfigError, match="not valid JSON"):
        load_servers(broken)


@pytest.fixture
async def everything_http() -> AsyncIterator[str]:
    """The npm `everything` server over Streamable HTTP, on a free loopback port."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        str(node_server("mcp-server-everything")),
        "streamableHttp",
        env={**os.environ, "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        await server.wait()


async def test_the_everything_server_over_stdio_and_streamable_http(everything_http: str) -> None:
    configs = parse_servers(
        {
            "stdio": {"command": str(node_server("mcp-server-everything")), "args": ["stdio"]},
            "http": {"url": everything_http, "headers": {"X-Symposia-Test": "1"}},
        }
    )
    pool = ToolServers.of(configs, call_timeout=30)
    try:
        box = await Toolbox.of(pool, ["stdio", "http"])
        for transport in ("stdio", "http"):
            assert f"{transport}__echo" in box.entries
            echoed = await box.run(_call(f"{transport}__echo", {"message": "hello"}))
            assert (echoed.is_error, "hello" in echoed.content) == (False, True)
            image = await box.run(_call(f"{transport}__get-tiny-image"))
            assert "[image content, image/png]" in image.content
        health = pool.health()
        assert (health["http"]["transport"], health["http"]["state"]) == ("http", "running")
    finally:
        await pool.aclose()

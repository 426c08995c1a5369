"""An MCP server (the SDK's MCPServer, over stdio) whose tools fail in the ways a real
one can: slow, crashing mid-call, answering 10 MB, raising an error, changing its list."""

from __future__ import annotations

import asyncio
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("faults")


@server.tool()
def echo(text: str) -> str:
    """Say `text` back."""
    return f"echo: {text}"


@server.tool()
def tally(text: str) -> str:
    """Count this call in the file TALLY_FILE names: how a test sees a tool ran once."""
    with open(os.environ["TALLY_FILE"], "a") as tallies:
        tallies.write(text + "\n")
    with open(os.environ["TALLY_FILE"]) as tallies:
        return f"tallied {len(tallies.read().splitlines())}"


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after `seconds`, saying when it started and ended (epoch seconds)."""
    started = time.time()
    await asyncio.sleep(seconds)
    return f"slept {started} {time.time()}"


@server.tool()
def crash() -> str:
    """Kill the server process in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


@server.tool()
def huge() -> str:
    """Answer ten megabytes."""
    return "y" * (10 * 1024 * 1024)


@server.tool()
def fail() -> str:
    """Raise an error."""
    raise ValueError("the tool failed on purpose")


@server.tool()
async def grow(ctx: Context) -> str:  # type: ignore[type-arg]
    """Add a tool `added` and tell the client its list changed."""

    def added() -> str:
        """A tool that did not exist at start."""
        return "new"

    server.add_tool(added, name="added")
    await ctx.session.send_tool_list_changed()
    return "grown"


if __name__ == "__main__":
    server.run("stdio")

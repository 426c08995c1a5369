"""The MCP servers of this process: each started on first use, shared by every request,
restarted with backoff when it dies, its tool list cached until it says it changed.

The SDK's `Client` is an async context manager whose task group must be entered and left
by one task, so each server has an owner task that holds the client open until the server
is stopped or found dead; requests use the connected client from their own tasks.

    ToolServerError
     ├── ToolServerUnavailableError  the server cannot be reached now (failed start, backoff)
     └── ToolCallFailedError         the call failed (a protocol error, a timeout, a crash)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from symposia.security.principals import Principal
from symposia.tools.config import McpServerConfig

if TYPE_CHECKING:  # the SDK is loaded when a server is first used, not at start-up
    import mcp_types
    from mcp.client.session import IncomingMessage

    from mcp import Client

logger = logging.getLogger(__name__)

# How long a server may take to start and answer its handshake.
START_TIMEOUT_SECONDS = 30.0
# Restart backoff after a server died or failed to start: doubled each time, capped.
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# How long a stopping server is given to exit.
STOP_TIMEOUT_SECONDS = 5.0

State = Literal["idle", "starting", "running", "backing_off"]


class ToolServerError(Exception):
    """An MCP server could not do what was asked; the message is safe to show the model."""


class ToolServerUnavailableError(ToolServerError):
    pass


class ToolCallFailedError(ToolServerError):
    pass


@dataclass(frozen=True, slots=True)
class ServerTool:
    """A tool a server offers: its name, description and JSON schema of arguments."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    # MCP's hints (`readOnlyHint`...), as the server sent them; None when it sent none.
    annotations: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def _target(config: McpServerConfig, stack: contextlib.AsyncExitStack) -> Any:
    """What the SDK's `Client` connects to; an HTTP client made here is closed by `stack`
    (the SDK leaves a client it was given open)."""
    from mcp.client.streamable_http import streamable_http_client

    from mcp import StdioServerParameters

    if config.command is not None:
        return StdioServerParameters(
            command=config.command, args=list(config.args), env=config.env or None, cwd=config.cwd
        )
    assert config.url is not None
    if not config.headers:
        return config.url
    from mcp.shared._httpx_utils import create_mcp_http_client

    # The SDK's own client, with its timeouts (a plain client's 5 s read would cut a slow
    # tool's stream), carrying the operator's headers.
    client = create_mcp_http_client(headers=dict(config.headers))
    stack.push_async_callback(client.aclose)
    return streamable_http_client(config.url, http_client=client)


@dataclass(slots=True)
class McpServer:
    """One configured server and its connection, if any."""

    name: str
    config: McpServerConfig
    state: State = "idle"
    last_error: str | None = None
    restarts: int = 0
    _client: Client | None = None
    _stop: asyncio.Event | None = None
    _owner: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tools: tuple[ServerTool, ...] | None = None
    _failures: int = 0
    _retry_at: float = 0.0

    async def tools(self) -> tuple[ServerTool, ...]:
        """The server's tools, from the cache unless it said they changed."""
        cached = self._tools
        if cached is not None:
            return cached
        client = await self._connected()
        try:
            listed: list[mcp_types.Tool] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                listed.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
        except Exception as exc:
            await self._died(client, exc)
            raise ToolServerUnavailableError(
                f"MCP server {self.name!r} could not list its tools"
            ) from exc
        tools = tuple(
            ServerTool(
                self.name,
                t.name,
                t.description or "",
                dict(t.input_schema or {}),
                t.annotations.model_dump(by_alias=True, exclude_none=True)
                if t.annotations is not None
                else None,
            )
            for t in listed
        )
        if self._client is client:
            self._tools = tools
        return tools

    async def call(
        self, tool: str, arguments: dict[str, Any], limit: float
    ) -> mcp_types.CallToolResult:
        """Call `tool`; a timeout, a protocol error or the server's death is `ToolCallFailedError`
        (a dead server is restarted, with backoff, on its next use)."""
        from mcp_types import CONNECTION_CLOSED

        from mcp import MCPError

        client = await self._connected()
        try:
            async with asyncio.timeout(limit):
                return await client.call_tool(tool, arguments, read_timeout_seconds=limit)
        except TimeoutError as exc:
            raise ToolCallFailedError(
                f"the tool {tool!r} did not answer within {limit:g} s"
            ) from exc
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                await self._died(client, exc)
                raise ToolCallFailedError(
                    f"the MCP server {self.name!r} stopped during the call"
                ) from exc
            raise ToolCallFailedError(
                f"the MCP server {self.name!r} answered an error: {exc}"
            ) from exc
        except Exception as exc:  # the transport broke: the process died, the socket closed
            await self._died(client, exc)
            raise ToolCallFailedError(
                f"the MCP server {self.name!r} stopped during the call"
            ) from exc

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "transport": self.config.transport,
            "state": self.state,
            "restarts": self.restarts,
        }
        if self._tools is not None:
            body["tools"] = len(self._tools)
        if self.last_error:
            body["last_error"] = self.last_error
        return body

    async def _connected(self) -> Client:
        client = self._client
        if client is not None:
            return client
        async with self._lock:
            if self._client is not None:
                return self._client
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                raise ToolServerUnavailableError(
                    f"MCP server {self.name!r} is restarting (next try in {wait:.1f} s)"
                )
            return await self._start()

    async def _start(self) -> Client:
        self.state = "starting"
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        stop = self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._own(ready, stop), name=f"mcp-{self.name}")
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                client = await asyncio.shield(ready)
        except Exception as exc:
            stop.set()
            self._back_off(exc)
            raise ToolServerUnavailableError(
                f"MCP server {self.name!r} could not be started"
            ) from exc
        self._client, self._tools, self.state = client, None, "running"
        self._failures = 0
        logger.info("MCP server %s started (%s)", self.name, self.config.transport)
        return client

    async def _own(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        """Hold the client open until `stop`: the SDK wants one task to enter and leave it."""
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                target = _target(self.config, stack)
                client = await stack.enter_async_context(
                    Client(target, mode="legacy", message_handler=self._on_message, cache=None)
                )
                if not ready.done():
                    ready.set_result(client)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            elif not isinstance(exc, asyncio.CancelledError | Exception):
                raise

    async def _on_message(self, message: IncomingMessage) -> None:
        import mcp_types

        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._tools = None  # listed again on next use
            logger.info("MCP server %s changed its tool list", self.name)

    async def _died(self, client: Client, exc: BaseException) -> None:
        """Forget a dead client (once, whoever noticed first) and schedule the restart."""
        if self._client is not client:
            return
        self._client, self._tools = None, None
        self.restarts += 1
        self._back_off(exc)
        await self._stop_owner()

    def _back_off(self, exc: BaseException) -> None:
        self._failures += 1
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        self.state = "backing_off"
        self.last_error = type(exc).__name__
        logger.warning(
            "MCP server %s failed (%s); next start in %.1f s", self.name, type(exc).__name__, delay
        )

    async def _stop_owner(self) -> None:
        owner, stop = self._owner, self._stop
        self._owner = None
        if stop is not None:
            stop.set()
        if owner is not None and owner is not asyncio.current_task():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await owner
            if not owner.done():
                owner.cancel()

    async def aclose(self) -> None:
        self._client, self._tools = None, None
        await self._stop_owner()
        self.state = "idle"


@dataclass(slots=True)
class ToolServers:
    """Every configured server of this process, by name."""

    servers: dict[str, McpServer] = field(default_factory=dict)
    call_timeout: float = 60.0
    max_result_chars: int = 100_000
    max_argument_chars: int = 100_000

    @classmethod
    def of(cls, configs: Mapping[str, McpServerConfig], **limits: Any) -> ToolServers:
        return cls({name: McpServer(name, c) for name, c in configs.items()}, **limits)

    def __iter__(self) -> Iterator[McpServer]:
        return iter(self.servers.values())

    def get(self, name: str) -> McpServer | None:
        return self.servers.get(name)

    def granted(self, principal: Principal) -> list[McpServer]:
        """The servers `principal` may see and call."""
        return [s for s in self.servers.values() if s.config.allows(principal)]

    def health(self) -> dict[str, Any]:
        return {name: server.health() for name, server in self.servers.items()}

    async def aclose(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self.servers.values()), return_exceptions=True)

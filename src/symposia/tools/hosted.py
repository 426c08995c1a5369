"""The Responses API's MCP tool (`{"type": "mcp", ...}`): the servers one request names, the
tools the model is offered from them, and which of its calls wait for the client's approval.

A tool names its server one of two ways. With `server_url`, a Streamable HTTP server the
client chose: allowed only by the operator's MCP_ALLOWED_URLS (`security.outbound_urls`),
connected for this request alone with the client's `headers` (and `authorization`, as a
bearer token), closed when the response ends. Without it, `server_label` names a server of
the operator's MCP_SERVERS_FILE that the caller is granted; its own headers stand, so a
client's `headers` are refused there. Either way a call needs approval when the request
says so (OpenAI's default: `always`) or when the operator's file does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from symposia.errors import InvalidInputError
from symposia.providers.base import Tool, ToolCall
from symposia.security.outbound_urls import UrlPrefix, check_url
from symposia.security.principals import Principal
from symposia.tools.config import SERVER_NAME, McpServerConfig
from symposia.tools.servers import McpServer, ServerTool, ToolServers
from symposia.tools.toolbox import Toolbox, ToolOutcome, function_name

MAX_HOSTED = 16
HEADERS_MAX = 32
REFUSED_KEYS = ("connector_id", "tunnel_id", "defer_loading")


@dataclass(frozen=True, slots=True)
class ToolFilter:
    """OpenAI's `MCPToolFilter`: tools by name and/or by their read-only hint."""

    names: frozenset[str] | None = None
    read_only: bool | None = None

    def matches(self, tool: ServerTool) -> bool:
        if self.names is not None and tool.name not in self.names:
            return False
        if self.read_only is not None:
            hint = (tool.annotations or {}).get("readOnlyHint")
            return bool(hint) == self.read_only
        return True


@dataclass(frozen=True, slots=True)
class HostedServer:
    """One `mcp` tool of a request: its label, its server, and its rules."""

    label: str
    server: McpServer
    own: bool  # a client's URL: connected for this request, closed after it
    allowed: ToolFilter | None
    always: ToolFilter | None  # calls that wait for approval
    never: ToolFilter | None  # calls that do not; a call neither names waits
    echo: dict[str, Any]  # the tool as the Response shows it (no headers)

    def offers(self, tool: ServerTool) -> bool:
        return self.allowed is None or self.allowed.matches(tool)

    def needs_approval(self, tool: ServerTool) -> bool:
        if self.server.config.needs_approval(tool.name):
            return True  # the operator's rule cannot be lifted by a request
        if self.always is not None and self.always.matches(tool):
            return True
        return self.never is None or not self.never.matches(tool)


@dataclass(slots=True)
class HostedTools:
    """The MCP tools of one request: their servers, and the tools offered by the name
    the model calls them (`label__tool`)."""

    servers: list[HostedServer]
    toolbox: Toolbox
    offered: dict[str, tuple[HostedServer, ServerTool]] = field(default_factory=dict)

    def by_label(self, label: str) -> HostedServer | None:
        return next((s for s in self.servers if s.label == label), None)

    def offer(self, hosted: HostedServer, tools: Sequence[ServerTool]) -> list[ServerTool]:
        """Offer the model `tools` of `hosted` that its `allowed_tools` let through."""
        kept = [t for t in tools if hosted.offers(t)]
        for tool in kept:
            name = function_name(tool)
            self.offered.setdefault(name, (hosted, tool))
            self.toolbox.entries.setdefault(name, tool)
        return kept

    def definitions(self) -> tuple[Tool, ...]:
        return self.toolbox.definitions()

    def owns(self, name: str) -> bool:
        return name in self.offered

    def needs_approval(self, name: str) -> bool:
        hosted, tool = self.offered[name]
        return hosted.needs_approval(tool)

    def named(self, label: str, tool: str) -> str | None:
        """The function name of `label`'s `tool`, if it is offered."""
        for name, (hosted, offered) in self.offered.items():
            if hosted.label == label and offered.name == tool:
                return name
        return None

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run an offered call (its approval, if it needed one, was given)."""
        return await self.toolbox.run(call)

    async def aclose(self) -> None:
        for hosted in self.servers:
            if hosted.own:
                await hosted.server.aclose()


async def hosted_tools(
    tools: Sequence[dict[str, Any]] | None,
    configured: ToolServers,
    prefixes: tuple[UrlPrefix, ...],
    principal: Principal | None,
) -> HostedTools | None:
    """The request's `mcp` tools, checked (a 400 naming the field otherwise); None when
    it has none. Nothing is connected here."""
    specs = [(i, t) for i, t in enumerate(tools or ()) if t.get("type") == "mcp"]
    if not specs:
        return None
    if len(specs) > MAX_HOSTED:
        raise InvalidInputError(f"at most {MAX_HOSTED} mcp tools", "tools")
    servers: list[HostedServer] = []
    for index, spec in specs:
        hosted = await _hosted(index, spec, configured, prefixes, principal)
        if any(s.label == hosted.label for s in servers):
            raise InvalidInputError(
                f"two mcp tools are labelled {hosted.label!r}", f"tools.{index}.server_label"
            )
        servers.append(hosted)
    pool = ToolServers(
        {s.label: s.server for s in servers},
        call_timeout=configured.call_timeout,
        max_result_chars=configured.max_result_chars,
        max_argument_chars=configured.max_argument_chars,
    )
    return HostedTools(servers, Toolbox(pool, approver=_approved))


async def _approved(_: object) -> bool:
    return True  # asked only for a call the client approved (or that needs no approval)


async def _hosted(
    index: int,
    spec: dict[str, Any],
    configured: ToolServers,
    prefixes: tuple[UrlPrefix, ...],
    principal: Principal | None,
) -> HostedServer:
    where = f"tools.{index}"
    label = spec.get("server_label")
    if not isinstance(label, str) or not SERVER_NAME.match(label):
        raise InvalidInputError(
            "server_label must be 1-32 letters, digits, '_' or '-'", f"{where}.server_label"
        )
    for key in REFUSED_KEYS:
        if spec.get(key) not in (None, False):
            raise InvalidInputError(f"`{key}` is not supported by this server", f"{where}.{key}")
    headers = _headers(spec, where)
    url = spec.get("server_url")
    echo: dict[str, Any] = {"type": "mcp", "server_label": label}
    if url is not None:
        if not isinstance(url, str):
            raise InvalidInputError("server_url must be a URL", f"{where}.server_url")
        await check_url(url, prefixes, f"{where}.server_url")
        config = McpServerConfig(url=url, headers=headers)
        server, own = McpServer(label, config), True
        echo["server_url"] = url
    else:
        found = configured.get(label)
        if found is None or (principal is not None and not found.config.allows(principal)):
            raise InvalidInputError(
                f"no MCP server {label!r} is configured for you: give a `server_url`, or "
                "a `server_label` that GET /api/tools lists",
                f"{where}.server_label",
            )
        if headers:
            raise InvalidInputError(
                "headers go to a `server_url` only: a configured server keeps its own",
                f"{where}.headers",
            )
        server, own = found, False
    always, never = _approval(spec.get("require_approval"), f"{where}.require_approval")
    allowed = spec.get("allowed_tools")
    tool_filter = None if allowed is None else _filter(allowed, f"{where}.allowed_tools")
    for key in ("allowed_tools", "require_approval", "server_description"):
        if spec.get(key) is not None:
            echo[key] = spec[key]
    return HostedServer(label, server, own, tool_filter, always, never, echo)


def _headers(spec: dict[str, Any], where: str) -> dict[str, str]:
    headers = spec.get("headers") or {}
    if not isinstance(headers, dict) or len(headers) > HEADERS_MAX:
        raise InvalidInputError(
            f"headers must be an object of at most {HEADERS_MAX} strings", f"{where}.headers"
        )
    for name, value in headers.items():
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise InvalidInputError(
                f"header {name!r} must be a one-line string", f"{where}.headers"
            )
    token = spec.get("authorization")
    if token is not None:
        if not isinstance(token, str) or "\n" in token:
            raise InvalidInputError("authorization must be a token", f"{where}.authorization")
        headers = {**headers, "Authorization": f"Bearer {token}"}
    return dict(headers)


def _filter(value: Any, where: str) -> ToolFilter:
    """A list of tool names, or `{"tool_names": [...], "read_only": bool}`."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ToolFilter(frozenset(value))
    if isinstance(value, dict) and set(value) <= {"tool_names", "read_only"}:
        names, read_only = value.get("tool_names"), value.get("read_only")
        names_ok = names is None or (
            isinstance(names, list) and all(isinstance(v, str) for v in names)
        )
        if names_ok and (read_only is None or isinstance(read_only, bool)):
            return ToolFilter(None if names is None else frozenset(names), read_only)
    raise InvalidInputError(
        'must be a list of tool names or {"tool_names": [...], "read_only": bool}', where
    )


def _approval(value: Any, where: str) -> tuple[ToolFilter | None, ToolFilter | None]:
    """(always, never): `always` (OpenAI's default) or `never` for every tool, or filters
    (a tool no filter names waits for approval, as OpenAI does)."""
    if value is None or value == "always":
        return ToolFilter(), None
    if value == "never":
        return None, ToolFilter()
    if isinstance(value, dict) and value and set(value) <= {"always", "never"}:
        always, never = value.get("always"), value.get("never")
        return (
            None if always is None else _filter(always, f"{where}.always"),
            None if never is None else _filter(never, f"{where}.never"),
        )
    raise InvalidInputError('must be "always", "never" or {"always": {...}, "never": {...}}', where)

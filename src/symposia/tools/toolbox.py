"""The MCP tools of one turn: what the model is offered, and how each of its calls is run.

An agent's `tools` name servers (`time`: all its tools) or single tools (`time.get_current_time`).
The model sees each as a function named `server__tool`; a call of one is run on its server
with a timeout and size caps, and whatever goes wrong (bad arguments, an MCP error, a
crash, a denial) comes back as an error result the model reads, never as a failed turn.
A result is data for the model: nothing in it is acted on here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from symposia.errors import InvalidInputError
from symposia.providers.base import Tool, ToolCall
from symposia.security.principals import Principal
from symposia.tools.servers import ServerTool, ToolServerError, ToolServers

if TYPE_CHECKING:
    import mcp_types

DEFAULT_MAX_TOOL_STEPS = 8
MAX_TOOL_STEPS_LIMIT = 32
MAX_REFS = 32
SEPARATOR = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
FUNCTION_NAME_LIMIT = 64  # OpenAI's limit on a function's name


@dataclass(frozen=True, slots=True)
class ToolRef:
    """`server` (all its tools) or `server.tool` (that one)."""

    server: str
    tool: str | None = None

    @classmethod
    def parse(cls, text: str) -> ToolRef:
        server, dot, tool = text.partition(".")
        return cls(server, tool if dot else None)

    def __str__(self) -> str:
        return self.server if self.tool is None else f"{self.server}.{self.tool}"


def parse_refs(
    values: Sequence[str], servers: ToolServers, principal: Principal | None, where: str
) -> tuple[str, ...]:
    """The `tools` of an agent as stored, checked: each names a configured server that
    `principal` may use (422 naming `where` otherwise). Servers are not started here."""
    if len(values) > MAX_REFS:
        raise InvalidInputError(f"at most {MAX_REFS} tools", where)
    refs: list[str] = []
    for value in values:
        ref = ToolRef.parse(value.strip())
        server = servers.get(ref.server)
        granted = server is not None and (principal is None or server.config.allows(principal))
        if not granted or ref.tool == "":
            raise InvalidInputError(
                f"unknown tool server {ref.server!r}: GET /api/tools lists the ones you may use",
                where,
            )
        if str(ref) not in refs:
            refs.append(str(ref))
    return tuple(refs)


def function_name(tool: ServerTool) -> str:
    """The name the model calls `tool` by: `server__tool`, within OpenAI's name rules."""
    return _UNSAFE.sub("_", f"{tool.server}{SEPARATOR}{tool.name}")[:FUNCTION_NAME_LIMIT]


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A call about to run: the id the model gave it, its server, tool and arguments."""

    id: str
    server: str
    tool: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: str
    is_error: bool
    duration_ms: float


# Asked before a call that needs a person's approval; True runs it.
Approver = Callable[[PendingCall], Awaitable[bool]]
DENIED = "The call was not approved: it was not run."


@dataclass(slots=True)
class Toolbox:
    """The tools one agent may call in one turn, by the name the model sees."""

    servers: ToolServers
    entries: dict[str, ServerTool] = field(default_factory=dict)
    max_steps: int = DEFAULT_MAX_TOOL_STEPS
    approver: Approver | None = None

    @classmethod
    async def of(
        cls, servers: ToolServers, refs: Sequence[str], max_steps: int = DEFAULT_MAX_TOOL_STEPS
    ) -> Toolbox:
        """The tools `refs` name, listed from their servers (started now if need be). A
        server that cannot be reached offers nothing this turn; the turn goes on."""
        box = cls(servers, max_steps=max_steps)
        for ref in map(ToolRef.parse, refs):
            server = servers.get(ref.server)
            if server is None:
                continue
            try:
                listed = await server.tools()
            except ToolServerError:
                continue
            for tool in listed:
                if ref.tool is None or tool.name == ref.tool:
                    box.entries.setdefault(function_name(tool), tool)
        return box

    def definitions(self) -> tuple[Tool, ...]:
        return tuple(
            Tool(name, t.description or None, t.input_schema or {"type": "object"})
            for name, t in self.entries.items()
        )

    def owns(self, name: str) -> bool:
        return name in self.entries

    def pending(self, call: ToolCall) -> PendingCall:
        tool = self.entries[call.name]
        return PendingCall(call.id, tool.server, tool.name, call.arguments)

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run `call` on its server; every failure is an error result for the model."""
        started = time.perf_counter()
        content, is_error = await self._run(call)
        return ToolOutcome(content, is_error, round((time.perf_counter() - started) * 1000, 2))

    async def _run(self, call: ToolCall) -> tuple[str, bool]:
        tool = self.entries[call.name]
        servers = self.servers
        if len(call.arguments) > servers.max_argument_chars:
            return f"The arguments are longer than {servers.max_argument_chars} characters.", True
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return "The arguments are not a JSON object.", True
        server = servers.get(tool.server)
        if server is None:
            return f"The tool server {tool.server!r} is no longer configured.", True
        if server.config.needs_approval(tool.name):
            approver = self.approver
            if approver is None or not await approver(self.pending(call)):
                return DENIED, True
        timeout = server.config.timeout_seconds or servers.call_timeout
        try:
            result = await server.call(tool.name, arguments, timeout)
        except ToolServerError as exc:
            return str(exc), True
        return capped(result_text(result), servers.max_result_chars), bool(result.is_error)


def result_text(result: mcp_types.CallToolResult) -> str:
    """A tool's result as the text the model reads: its text blocks, a placeholder for
    each other block, or its structured content when it sent only that."""
    import mcp_types

    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource {resource.uri}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource {block.uri}]")
        else:
            parts.append(f"[{block.type} content, {getattr(block, 'mime_type', '')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def capped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[truncated: {len(text) - limit} more characters]"


def tool_message_content(outcome: ToolOutcome) -> str:
    return f"Error: {outcome.content}" if outcome.is_error else outcome.content

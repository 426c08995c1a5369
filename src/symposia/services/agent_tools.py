"""The `tools` of an agent (a run's bot, a panel's specialist, a conversation), checked
when it is created: each names an MCP server the caller may use, and the agent's model
can call tools (a model that cannot is refused by the agent's name, never run without)."""

from __future__ import annotations

from collections.abc import Sequence

from symposia.domain.models import Panel
from symposia.errors import InvalidInputError
from symposia.providers.registry import ProviderRegistry
from symposia.security.principals import Principal
from symposia.tools.servers import ToolServers
from symposia.tools.toolbox import parse_refs


def agent_tools(
    servers: ToolServers,
    registry: ProviderRegistry,
    principal: Principal,
    refs: Sequence[str],
    model: str,
    where: str,
    agent: str,
) -> tuple[str, ...]:
    """`refs` as stored; 422 naming `where` for a server the principal may not use, or a
    model that cannot call tools."""
    checked = parse_refs(refs, servers, principal, f"{where}.tools")
    provider, _ = registry.resolve(model, field=f"{where}.model")
    if "tools" not in provider.features:
        raise InvalidInputError(
            f"{agent!r} cannot have tools: the {provider.name} provider cannot call them "
            f"(model {model}); give it a model that can, or no tools",
            f"{where}.tools",
        )
    return checked


def conversation_tools(
    servers: ToolServers,
    registry: ProviderRegistry,
    principal: Principal,
    tools: Sequence[object] | None,
    panel: Panel | None,
) -> None:
    """A conversation's MCP references (strings among its `tools`) and its panel agents'
    `tools`, checked for `principal` (the models of the conversation's own tools are the
    service's to check, with its function tools)."""
    refs = [t for t in tools or () if isinstance(t, str)]
    if refs:
        parse_refs(refs, servers, principal, "tools")
    for index, agent in enumerate(panel.agents if panel is not None else ()):
        if agent.tools:
            where = f"panel.agents.{index}"
            agent_tools(servers, registry, principal, agent.tools, agent.model, where, agent.name)

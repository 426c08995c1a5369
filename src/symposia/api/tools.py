"""The MCP servers and tools the caller may give its agents (`tools` of a bot, a panel
agent or a conversation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from symposia.api.deps import ContainerDep, PrincipalDep, get_principal
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.tools.servers import ToolServerError
from symposia.tools.toolbox import function_name

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["tools"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 503),
)


@router.get("/tools")
async def list_tools(container: ContainerDep, principal: PrincipalDep) -> dict[str, Any]:
    """Each server granted to the caller, with its tools (listed from the server, which
    is started if need be; one that cannot be reached says so in `error`)."""
    items: list[dict[str, Any]] = []
    for server in container.tools.granted(principal):
        item: dict[str, Any] = {
            "name": server.name,
            "transport": server.config.transport,
            "require_approval": server.config.require_approval,
        }
        try:
            item["tools"] = [
                {**tool.to_dict(), "function": function_name(tool)} for tool in await server.tools()
            ]
        except ToolServerError as exc:
            item["tools"], item["error"] = [], str(exc)
        items.append(item)
    return {"items": items}

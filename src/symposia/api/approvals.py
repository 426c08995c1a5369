"""A person approving or denying an MCP tool call that an agent of their run or
conversation wants to make (its server's `require_approval`); docs/tools.md."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from symposia.api.deps import (
    ContainerDep,
    ConversationsDep,
    PrincipalDep,
    RunsDep,
    get_principal,
)
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["tools"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 404, 422, 503),
)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = Field(description="true runs the call; false denies it.")


async def _decide(
    container: ContainerDep, subject: str, call_id: str, body: Decision, who: str
) -> dict[str, Any]:
    status = await container.approvals.decide(subject, call_id, body.approve, who)
    return {"call_id": call_id, "status": status}


@router.get("/run/{run_id}/approvals")
async def run_approvals(
    run_id: str, runs: RunsDep, principal: PrincipalDep, container: ContainerDep
) -> dict[str, Any]:
    """The tool calls of the run waiting for your decision."""
    await runs.get(run_id, owner=principal.id)
    pending = await container.approvals.pending(f"run:{run_id}")
    return {"items": [p.to_dict() for p in pending]}


@router.post("/run/{run_id}/approvals/{call_id}", responses=api_errors(400, 409, 413))
async def decide_run_call(
    run_id: str,
    call_id: str,
    body: Decision,
    runs: RunsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> dict[str, Any]:
    """Approve or deny a pending tool call of your run: it runs, or its result says it
    was denied. 409 once it was decided (or timed out)."""
    await runs.get(run_id, owner=principal.id)
    return await _decide(container, f"run:{run_id}", call_id, body, principal.id)


@router.get("/conversations/{conversation_id}/approvals")
async def conversation_approvals(
    conversation_id: str,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> dict[str, Any]:
    await conversations.get(conversation_id, owner=principal.id)
    pending = await container.approvals.pending(f"conversation:{conversation_id}")
    return {"items": [p.to_dict() for p in pending]}


@router.post(
    "/conversations/{conversation_id}/approvals/{call_id}", responses=api_errors(400, 409, 413)
)
async def decide_conversation_call(
    conversation_id: str,
    call_id: str,
    body: Decision,
    conversations: ConversationsDep,
    principal: PrincipalDep,
    container: ContainerDep,
) -> dict[str, Any]:
    """As for a run: approve or deny a pending tool call of the conversation's reply."""
    await conversations.get(conversation_id, owner=principal.id)
    return await _decide(container, f"conversation:{conversation_id}", call_id, body, principal.id)

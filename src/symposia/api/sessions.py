"""A principal's browser sessions: `GET /api/sessions` lists them, `DELETE` ends one.

Sessions live server-side (`security.session_store`), so ending one here ends it for
every copy of its cookie. Only the caller's own sessions are seen; another's id is 404.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from symposia.api.deps import PrincipalDep, container_from
from symposia.api.responses import api_errors
from symposia.errors import NotFoundError
from symposia.security.sessions import session_id

router = APIRouter(prefix="/api/sessions", tags=["sessions"], responses=api_errors(401, 503))


class SessionOut(BaseModel):
    id: str
    kind: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime  # when it ends unless used again (idle), at most its absolute cap
    current: bool  # the session this request was made with


class SessionList(BaseModel):
    items: list[SessionOut]


@router.get("", response_model=SessionList)
async def list_sessions(request: Request, principal: PrincipalDep) -> SessionList:
    """The caller's live browser sessions, newest first; `current` marks this one."""
    store = container_from(request).auth.sessions
    current = session_id(request.scope.get("session"))
    return SessionList(
        items=[
            SessionOut(
                id=record.id,
                kind=record.principal.kind,
                created_at=record.created_at,
                last_seen=record.last_seen,
                expires_at=store.idle_deadline(record),
                current=record.id == current,
            )
            for record in await store.of(principal.id)
        ]
    )


@router.delete("/{session_id}", status_code=204, responses=api_errors(404, 422))
async def end_session(request: Request, session_id: str, principal: PrincipalDep) -> Response:
    """End one of the caller's sessions (the current one too: that is a sign-out)."""
    if not await container_from(request).auth.sessions.delete(session_id, principal.id):
        raise NotFoundError(f"no session {session_id} of yours")
    return Response(status_code=204)

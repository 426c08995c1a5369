"""FastAPI dependencies as `Annotated` aliases, so routers name what they need in one word."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from symposia.container import Container
from symposia.security.client_address import client_address
from symposia.security.principals import Principal
from symposia.services.conversations import ConversationService
from symposia.services.runs import RunService
from symposia.settings import Settings
from symposia.streaming.stream_slots import Release


def container_from(request: HTTPConnection) -> Container:
    container: Container = request.app.state.container
    return container


# The dependencies are `async def` although they only look an attribute up: FastAPI runs
# a plain `def` dependency in its thread pool, a thread hop per dependency per request.


async def get_container(request: Request) -> Container:
    return container_from(request)


async def get_runs(request: Request) -> RunService:
    return container_from(request).runs


async def get_conversations(request: Request) -> ConversationService:
    return container_from(request).conversations


async def get_settings(request: Request) -> Settings:
    return container_from(request).settings


async def get_principal(request: HTTPConnection) -> Principal:
    """Every /api and /v1 route depends on this: 401 without valid credentials. An
    `HTTPConnection`, so a WebSocket is authenticated the same way (api/ws.py): by its
    headers, or by the browser session (`scope["session"]`, see security.sessions)."""
    scope = request.scope
    principal = await container_from(request).auth.principal(
        request.headers, scope.get("session"), scope.get("method", "GET")
    )
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def rate_limited(scope: str) -> Any:
    """A dependency counting the request against `scope`'s limit for this principal (or,
    unauthenticated, this client address); 429 with Retry-After when over it."""

    async def hit(request: Request, principal: PrincipalDep) -> None:
        await count_request(request, container_from(request), principal, scope)

    return Depends(hit)


@dataclass(frozen=True, slots=True)
class Caller:
    container: Container
    principal: Principal


def rate_limited_caller(scope: str) -> Any:
    """Authentication, the rate limit of `scope` and the container as one dependency, for
    hot routes: FastAPI's cost grows with every dependency a route has."""

    async def caller(request: Request) -> Caller:
        container = container_from(request)
        principal = await get_principal(request)
        await count_request(request, container, principal, scope)
        return Caller(container, principal)

    return Depends(caller)


def caller_key(request: HTTPConnection, container: Container, principal: Principal) -> str:
    """Whose budget a request counts against: its principal, or unauthenticated (the open
    modes), its client address."""
    if principal.authenticated:
        return principal.id
    peer = request.client.host if request.client else None
    return "ip:" + client_address(
        peer, request.headers.get("x-forwarded-for"), container.trusted_proxies
    )


def stream_slot(request: HTTPConnection, container: Container, principal: Principal) -> Release:
    """A slot for one more open stream of this caller, to give back when it ends: 429
    past MAX_STREAMS_PER_PRINCIPAL (not counted in DEV_MODE, like rate limits)."""
    if container.settings.dev_mode:
        return _nothing
    return container.stream_slots.take(caller_key(request, container, principal))


def _nothing() -> None:
    pass


async def count_request(
    request: HTTPConnection, container: Container, principal: Principal, scope: str
) -> None:
    """Count one request (or WebSocket command) against `scope`'s limit: 429 over it."""
    if container.settings.dev_mode:
        return
    await container.limiter.hit(scope, caller_key(request, container, principal))


ContainerDep = Annotated[Container, Depends(get_container)]
RunsDep = Annotated[RunService, Depends(get_runs)]
ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

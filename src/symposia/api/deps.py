"""FastAPI dependencies as `Annotated` aliases, so routers name what they need in one word."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Query, Request
from starlette.requests import HTTPConnection

from symposia.container import Container
from symposia.errors import UnauthorizedError
from symposia.security.client_address import client_address
from symposia.security.principals import Principal
from symposia.security.signin_limits import SignInLimits, basic_user
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
    container = container_from(request)
    user = None if container.settings.dev_mode else basic_user(request.headers)
    if user is None:
        principal = await container.auth.principal(
            request.headers, scope.get("session"), scope.get("method", "GET")
        )
    else:
        principal = await _basic_principal(request, container, user)
    request.state.principal = principal
    return principal


async def _basic_principal(request: HTTPConnection, container: Container, user: str) -> Principal:
    """An HTTP Basic sign-in, limited as the sign-in form's: failures count per client
    and per user name (RATE_LIMIT_SIGNIN), and over the limit it is a 429."""
    limits = SignInLimits(container.limiter)
    address = client_of(request, container)
    await limits.check(address, user)
    try:
        return await container.auth.principal(
            request.headers, None, request.scope.get("method", "GET")
        )
    except UnauthorizedError:
        await limits.failed(address, user)
        raise


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def rate_limited(scope: str) -> Any:
    """A dependency counting the request against `scope`'s limit for this principal (or,
    unauthenticated, this client address); 429 with Retry-After when over it."""

    async def hit(request: Request, principal: PrincipalDep) -> None:
        await count_request(request, container_from(request), principal, scope)

    return Depends(hit)


@dataclass(frozen=True, slots=True)
class Admission:
    """A request checked against its scope's limit but not yet counted: the route counts
    it once admitted, so a refusal further on (the running-runs limit) costs nothing."""

    container: Container
    scope: str
    key: str | None  # None: no limits (DEV_MODE)

    async def count(self) -> None:
        if self.key is not None:
            await self.container.limiter.count(self.scope, self.key)


def limited_when_admitted(scope: str) -> Any:
    """A dependency giving an `Admission` for `scope`: 429 with Retry-After when the
    caller's window is already full, counted by the route only when admitted."""

    async def admission(request: Request, principal: PrincipalDep) -> Admission:
        container = container_from(request)
        key = limit_key(request, container, principal)
        if key is not None:
            await container.limiter.check(scope, key)
        return Admission(container, scope, key)

    return Depends(admission)


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
    return "ip:" + client_of(request, container)


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
    key = limit_key(request, container, principal)
    if key is not None:
        await container.limiter.hit(scope, key)


def limit_key(request: HTTPConnection, container: Container, principal: Principal) -> str | None:
    """Whose window a request counts in: its principal's, or unauthenticated, its client
    address's; None in DEV_MODE, which has no limits."""
    if container.settings.dev_mode:
        return None
    return caller_key(request, container, principal)


def client_of(request: HTTPConnection, container: Container) -> str:
    """The client's address: the peer's, or X-Forwarded-For's from a trusted proxy."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), container.trusted_proxies)


ContainerDep = Annotated[Container, Depends(get_container)]
RunsDep = Annotated[RunService, Depends(get_runs)]
RunAdmission = Annotated[Admission, limited_when_admitted("runs")]
ConversationsDep = Annotated[ConversationService, Depends(get_conversations)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# `Idempotency-Key` (services.idempotency): a retry with it creates nothing twice.
IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes a retry safe: the same key and request within 24 h get the "
        "first answer again (409 while it is in flight; 422 for another request)",
    ),
]
# `?events=unnamed`: the stream's frames carry no `event:` name, so a browser's
# `EventSource.onmessage` receives them (named events never reach it); `data.type` names
# each. The default, `named`, is the form documented in docs/events.md.
EventsFormDep = Annotated[
    Literal["named", "unnamed"],
    Query(
        alias="events",
        description="`unnamed`: frames without an `event:` line (for EventSource.onmessage); "
        "each frame's `data.type` is its event name",
    ),
]

"""Signing in from a browser: the sign-in page, its form, OpenID Connect, sign-out.

`EventSource` cannot send a header, so a browser authenticates with a session cookie
(`security.sessions`) made here. The page and its redirects are HTML, outside the OpenAPI
schema; `GET /auth/session` and `POST /auth/signout` are JSON for the web page.
"""

from __future__ import annotations

import hmac
import secrets
from html import escape
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from symposia.api.deps import container_from
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.errors import NotFoundError, UnauthorizedError
from symposia.security.client_address import client_address
from symposia.security.csrf import HEADER, check_csrf
from symposia.security.sessions import session_id, sign_in
from symposia.security.signin_limits import SignInLimits

if TYPE_CHECKING:  # loaded by the app only when OIDC is configured
    from symposia.security.oidc import OidcSignIn

router = APIRouter(route_class=BoundedJsonRoute, tags=["sign-in"])

PAGE = Template((Path(__file__).parents[1] / "web" / "signin.html").read_text("utf-8"))
FORM_TOKEN = "form_token"  # noqa: S105 (a session key, not a secret)
OIDC_NEXT = "oidc_next"


def local_path(next_url: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site (`//host`,
    `/\\host` and `scheme:` all lead elsewhere in a browser)."""
    if (
        not next_url
        or not next_url.startswith("/")
        or next_url.startswith(("//", "/\\"))
        or any(ord(c) < 0x20 for c in next_url)
    ):
        return "/"
    return next_url


def _oidc(request: Request) -> OidcSignIn | None:
    oidc: OidcSignIn | None = request.app.state.oidc
    return oidc


def methods(request: Request) -> list[str]:
    settings = container_from(request).settings
    found = ["basic"] if settings.basic_auth_configured else []
    found.append("api_key")
    if _oidc(request) is not None:
        found.append("oidc")
    return found


def _page(
    request: Request,
    next_url: str,
    error: str | None = None,
    status: int = 200,
    username: str = "",
) -> Response:
    """The sign-in page, with a fresh form token in the session: a form posted from
    another site (login CSRF) has none."""
    token = secrets.token_urlsafe(24)
    request.session[FORM_TOKEN] = token
    oidc = _oidc(request)
    available = methods(request)
    html = PAGE.substitute(
        error=escape(error or ""),
        error_hidden="" if error else "hidden",
        oidc_hidden="" if oidc else "hidden",
        oidc_name=escape(oidc.name if oidc else ""),
        basic_hidden="" if "basic" in available else "hidden",
        form_token=token,
        username=escape(username),
        next=escape(next_url),
        next_query=escape(quote(next_url, safe="")),
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(html, status_code=status, headers=headers)


@router.get("/signin", include_in_schema=False)
async def signin_page(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return _page(request, local_path(next_url))


@router.post("/auth/signin", include_in_schema=False)
async def signin(
    request: Request,
    method: Annotated[Literal["basic", "api_key"], Form()],
    form_token: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """303 to `next` signed in; the page again with the error (401) otherwise."""
    target = local_path(next_url)
    container = container_from(request)
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    address = client_address(peer, forwarded, container.trusted_proxies)
    await container.limiter.hit("signin", "ip:" + address)
    expected = request.session.pop(FORM_TOKEN, None)
    if not isinstance(expected, str) or not hmac.compare_digest(form_token, expected):
        return _page(request, target, "The sign-in form expired; please try again.", 403)
    key_id = None
    limits = SignInLimits(container.limiter)
    user = username if method == "basic" else None
    await limits.check(None, user)  # the client's every attempt is counted above
    try:
        if method == "basic":
            principal = await container.auth.password(username, password)
        else:
            principal = await container.auth.api_key(api_key.strip())
            key_id = principal.name
    except UnauthorizedError as exc:
        await limits.failed(None, user)
        return _page(request, target, _sentence(exc.message), 401, username)
    sign_in(request.session, await container.auth.start_session(principal, key_id))
    return RedirectResponse(target, status_code=303)


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


@router.post("/auth/signout", status_code=204, responses=api_errors(403))
async def signout(request: Request) -> Response:
    """Ends the browser session, on the server too: a copy of the cookie is worth
    nothing after. Needs the session's `X-CSRF-Token` (from `GET /auth/session`), so
    another site cannot sign a visitor out."""
    session = request.session
    auth = container_from(request).auth
    record = await auth.from_session(session) if session_id(session) else None
    if record is not None:
        check_csrf(record.csrf, "POST", request.headers)
        await auth.sessions.delete(record.id)
    session.clear()
    return Response(status_code=204)


@router.get("/auth/session")
async def session_info(request: Request) -> dict[str, Any]:
    """Who this browser is signed in as (no credentials needed): the page reads its CSRF
    token here, for the `X-CSRF-Token` header of every change it makes."""
    session = request.session
    record = None
    if session_id(session) is not None:
        record = await container_from(request).auth.from_session(session)
    principal = None if record is None else record.principal
    return {
        "signed_in": principal is not None,
        "principal": None
        if principal is None
        else {"id": principal.id, "kind": principal.kind, "name": principal.name},
        "csrf_token": None if record is None else record.csrf,
        "csrf_header": HEADER,
        "methods": methods(request),
    }


@router.get("/auth/oidc/login", include_in_schema=False)
async def oidc_login(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """To the provider's sign-in; it sends the browser back to `/auth/oidc/callback`."""
    oidc = _require_oidc(request)
    configured = container_from(request).settings.oidc_redirect_url
    response = await oidc.login(request, configured or str(request.url_for("oidc_callback")))
    request.session[OIDC_NEXT] = local_path(next_url)
    return response


@router.get("/auth/oidc/callback", name="oidc_callback", include_in_schema=False)
async def oidc_callback(request: Request) -> Response:
    oidc = _require_oidc(request)
    target = local_path(request.session.get(OIDC_NEXT))
    try:
        principal = await oidc.finish(request)
    except UnauthorizedError as exc:
        return _page(request, target, _sentence(exc.message), 401)
    auth = container_from(request).auth
    sign_in(request.session, await auth.start_session(principal, None))
    return RedirectResponse(target, status_code=303)


def _require_oidc(request: Request) -> OidcSignIn:
    oidc = _oidc(request)
    if oidc is None:
        raise NotFoundError("OpenID Connect sign-in is not configured (OIDC_ISSUER)")
    return oidc

"""Browser sessions: Starlette's signed cookie (itsdangerous), engaged only where needed.

Once signed in, the cookie holds only the id of a session row (`session_store`): who
signed in, its CSRF token and its expiry live server-side, so a session can be ended.
Before sign-in it holds the sign-in form's token and OpenID Connect's state. The cookie
is signed, not encrypted: nothing secret goes in it.
Starlette's `SessionMiddleware` parses cookies and wraps `send` on every request; requests
that carry no session cookie and are not a sign-in route (every /v1 call, every call
with a header credential) skip it, so the hot path pays one scan of the headers.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from pydantic import SecretStr
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from symposia.security.session_store import SessionRecord
from symposia.settings import Settings

logger = logging.getLogger(__name__)

COOKIE_NAME = "symposia_session"
SESSION_ID = "sid"
_COOKIE_MARK = COOKIE_NAME.encode("ascii") + b"="
# Paths that write a session for a visitor who has none yet.
SESSION_PATHS = ("/signin", "/auth/")


_process_secret: list[str] = []


def session_secret(settings: Settings) -> str:
    """SESSION_SECRET, or a random one for this process (with a warning, once: sessions
    then end with a restart and do not span processes)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    if not _process_secret:
        logger.warning(
            "SESSION_SECRET is not set: browser sessions are signed with a random secret, "
            "so they end when the server restarts; set SESSION_SECRET to keep them"
        )
        _process_secret.append(secrets.token_urlsafe(32))
    return _process_secret[0]


def shared_secret(settings: Settings) -> Settings:
    """Settings for several workers: one random session secret for all of them when none
    is configured, so a session made by one worker is honoured by the others."""
    if settings.session_secret is not None:
        return settings
    logger.warning(
        "SESSION_SECRET is not set: the workers share a random one, so browser sessions "
        "end when the server restarts; set SESSION_SECRET to keep them"
    )
    return settings.model_copy(update={"session_secret": SecretStr(secrets.token_urlsafe(32))})


def has_session_cookie(headers: list[tuple[bytes, bytes]]) -> bool:
    # A plain loop: any() over a generator takes half as long again, on every request.
    for name, value in headers:  # noqa: SIM110
        if name == b"cookie" and _COOKIE_MARK in value:
            return True
    return False


class Sessions:
    """Pure ASGI: Starlette's `SessionMiddleware` for requests with a session cookie or on
    a sign-in path; every other request goes straight through, without `scope["session"]`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._sessions = SessionMiddleware(
            app,
            secret_key=session_secret(settings),
            session_cookie=COOKIE_NAME,
            max_age=settings.session_absolute_max_age_seconds,
            same_site="lax",
            https_only=settings.session_cookie_secure,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and (
            scope["path"].startswith(SESSION_PATHS) or has_session_cookie(scope["headers"])
        ):
            await self._sessions(scope, receive, send)
        else:
            await self._app(scope, receive, send)


def sign_in(session: dict[str, Any], record: SessionRecord) -> None:
    """Point the cookie at a fresh server-side session (whatever was there before is
    dropped, so a session fixed by someone else before sign-in is worth nothing after)."""
    session.clear()
    session[SESSION_ID] = record.id


def session_id(session: dict[str, Any] | None) -> str | None:
    """The id a signed-in cookie carries, unchecked (see `Authenticator.from_session`)."""
    if not session:
        return None
    value = session.get(SESSION_ID)
    return value if isinstance(value, str) and value else None

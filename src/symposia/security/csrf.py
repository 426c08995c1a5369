"""CSRF protection for requests a browser session authenticates.

A cookie rides along with any request a browser makes, whichever page made it; a custom
header does not (a cross-site page cannot set one without CORS allowing it). So a
state-changing request authenticated by the session must carry `X-CSRF-Token` equal to
the session's token, which a page of ours reads from `GET /auth/session`. Requests with
header credentials are not affected: no browser sends those on its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from symposia.errors import ForbiddenError

HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_csrf(expected: str | None, method: str, headers: Mapping[str, str]) -> None:
    """403 unless a state-changing request carries the session's CSRF token."""
    if method in SAFE_METHODS:
        return
    given = headers.get(HEADER.lower())
    if (
        not isinstance(expected, str)
        or given is None
        or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    ):
        raise ForbiddenError(
            f"this request is authenticated by the session cookie, so it needs the "
            f"{HEADER} header holding the session's token (from GET /auth/session)"
        )

"""Failed sign-ins are limited per client address and per user name, by RATE_LIMIT_SIGNIN:
the sign-in form and an HTTP Basic header alike, so a password cannot be guessed faster
through one than through the other. Over the limit, a 429 with Retry-After comes before
the password is even checked (a right one too, until the window has room again)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from symposia.security.rate_limit import RateLimiter

SCOPE = "signin"


def basic_user(headers: Mapping[str, str]) -> str | None:
    """The user name of an `Authorization: Basic` header the request authenticates with
    (an API key wins over it), "" when it cannot be read; None without one."""
    if headers.get("x-api-key") is not None:
        return None
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return decoded.partition(b":")[0].decode("utf-8", "replace")


class SignInLimits:
    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    @staticmethod
    def _keys(address: str | None, user: str | None) -> list[str]:
        """The windows counted: the client's (None: counted already, as the sign-in
        form counts its every attempt) and the user name's."""
        return (["ip:" + address] if address else []) + (["user:" + user] if user else [])

    async def check(self, address: str | None, user: str | None) -> None:
        """A 429 when this client, or this user name, failed too often lately."""
        for key in self._keys(address, user):
            await self._limiter.check(SCOPE, key)

    async def failed(self, address: str | None, user: str | None) -> None:
        """Count a failed attempt against the client and the user name."""
        for key in self._keys(address, user):
            await self._limiter.count(SCOPE, key)

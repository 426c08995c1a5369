"""The caller of a request, as far as ownership and rate limits are concerned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["basic", "api_key", "oidc", "dev", "local"]


@dataclass(frozen=True, slots=True)
class Principal:
    """`id` owns objects and names a rate-limit bucket; `authenticated` is False in the
    open modes (DEV_MODE, or a loopback server with no credentials configured), where the
    rate-limit bucket is the client address instead."""

    id: str
    kind: Kind
    name: str

    @property
    def authenticated(self) -> bool:
        return self.kind in ("basic", "api_key", "oidc")


DEV = Principal("dev", "dev", "dev mode")
LOCAL = Principal("local", "local", "loopback, no credentials configured")

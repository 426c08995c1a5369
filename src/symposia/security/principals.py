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

    @property
    def display_name(self) -> str:
        """How the principal is named where it speaks (a person's message in a run): a
        signed-in person's name; `you` for an API key (its id names no one) and in the
        open modes, whose `name` describes the mode."""
        if self.kind in ("basic", "oidc") and self.name:
            return self.name
        return YOU


YOU = "you"


DEV = Principal("dev", "dev", "dev mode")
LOCAL = Principal("local", "local", "loopback, no credentials configured")

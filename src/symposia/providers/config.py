"""Where a provider lives and how to authenticate: the part that is not the wire format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    api_key: str | None
    key_env: str
    base_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the key
        return f"ProviderConfig(name={self.name!r}, base_url={self.base_url!r})"

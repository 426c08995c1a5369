"""What the SDK-backed adapters share: their config, a lazily built client, and close."""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from symposia.providers.config import ProviderConfig
from symposia.providers.registry import ensure_configured

# Our own retry loop and timeouts govern; the SDK's are off or generous backstops.
SDK_TIMEOUT_SECONDS = 600.0


class _Closable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Closable)


class SdkAdapter(Generic[ClientT]):
    """A provider reached through an official SDK whose client is built on first use
    (importing an SDK costs a second or two at start-up)."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self._client: ClientT | None = None

    @property
    def configured(self) -> bool:
        return self.config.api_key is not None

    def check_model(self, model: str) -> None:
        ensure_configured(self.name, self.configured, self.config.key_env)

    def _client_options(self) -> dict[str, Any]:
        return {
            "api_key": self.config.api_key or "unset",
            "base_url": self.config.base_url,
            "max_retries": 0,  # exactly one retry loop: ours
            "timeout": SDK_TIMEOUT_SECONDS,
            "default_headers": dict(self.config.headers),
        }

    def _make_client(self) -> ClientT:
        raise NotImplementedError

    @property
    def client(self) -> ClientT:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

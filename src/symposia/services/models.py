"""Model discovery: what the configured providers offer, cached per provider.

A listing is kept MODELS_CACHE_SECONDS. A name not in it refreshes it at once, at most
every MISS_REFRESH_SECONDS per provider, so a model a provider starts to offer is found
without waiting out the cache. A provider that fails to list is reported next to the
others, never fatal, and its failure is not cached, so the next request tries again;
one with no listing route at all (404) lists nothing, and its models are answered from
configuration (the models file, the provider's own check), as for Bedrock.
The catalog loads listings for the registry's resolver (`ProviderRegistry.refresh`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from symposia.errors import (
    AmbiguousModelError,
    InvalidInputError,
    ModelNotFoundError,
    ProviderError,
    UnavailableError,
    UnknownModelError,
)
from symposia.providers.base import Provider
from symposia.providers.failures import MODELS_HINT
from symposia.providers.registry import ProviderRegistry

LIST_TIMEOUT_SECONDS = 10.0
LISTING_RETRY_AFTER = "5"
LISTED_AT = "GET /v1/models lists the models this server can use"
# A name missing from a listing refreshes it, at most this often per provider.
MISS_REFRESH_SECONDS = 5.0
NO_LISTING_STATUS = 404  # the provider has no /models route: it lists nothing


@dataclass(slots=True)
class _Entry:
    models: list[str]
    fetched_at: float


@dataclass(slots=True)
class ModelCatalog:
    registry: ProviderRegistry
    ttl: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, _Entry] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _failed_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.registry.refresh = self.refresh

    async def _models_of(self, provider: Provider, missed: bool = False) -> list[str]:
        """The provider's listing: cached for `ttl`, or MISS_REFRESH_SECONDS once a name
        was `missed` in it."""
        lock = self._locks.setdefault(provider.name, asyncio.Lock())
        async with lock:  # one listing call per provider at a time, whatever the demand
            entry = self._cache.get(provider.name)
            if entry is not None:
                age = self.clock() - entry.fetched_at
                if age < (min(self.ttl, MISS_REFRESH_SECONDS) if missed else self.ttl):
                    return entry.models
            try:
                async with asyncio.timeout(LIST_TIMEOUT_SECONDS):
                    models = await provider.models()
            except ProviderError as exc:
                if exc.failure.status != NO_LISTING_STATUS:
                    self._failed_at[provider.name] = self.clock()
                    raise
                models = []
            except Exception:  # not a cancellation: the caller left, the provider did not fail
                self._failed_at[provider.name] = self.clock()
                raise
            self._failed_at.pop(provider.name, None)
            self._cache[provider.name] = _Entry(models, self.clock())
            self.registry.note_listing(provider.name, models)
            return models

    async def refresh(self, missed: bool) -> None:
        """Load the configured providers' listings for the resolver (after a `missed`
        name: refresh them, throttled). A provider whose listing failed within
        MISS_REFRESH_SECONDS is not asked again, so bare names cost no call each."""
        now = self.clock()
        providers = [
            p
            for p in self.registry
            if p.configured
            and now - self._failed_at.get(p.name, -MISS_REFRESH_SECONDS) >= MISS_REFRESH_SECONDS
        ]
        await asyncio.gather(
            *(self._models_of(p, missed) for p in providers), return_exceptions=True
        )

    def cached(self) -> bool:
        """Whether `listing` would answer from the cache alone (every configured
        provider's models fetched less than `ttl` ago)."""
        now = self.clock()
        entries = [self._cache.get(p.name) for p in self.registry if p.configured]
        return all(e is not None and now - e.fetched_at < self.ttl for e in entries)

    async def listing(self) -> dict[str, Any]:
        """Every model as `provider/model`, and per provider whether listing worked."""
        providers = [p for p in self.registry if p.configured]
        results = await asyncio.gather(
            *(self._models_of(p) for p in providers), return_exceptions=True
        )
        models: list[dict[str, str]] = []
        report: dict[str, dict[str, Any]] = {
            p.name: {"configured": False, "ok": False, "error": None, "count": 0}
            for p in self.registry
        }
        for provider, result in zip(providers, results, strict=True):
            entry = report[provider.name]
            entry["configured"] = True
            if isinstance(result, BaseException):
                entry["error"] = _describe(provider.name, result)
                continue
            entry["ok"], entry["count"] = True, len(result)
            models.extend({"id": f"{provider.name}/{m}", "provider": provider.name} for m in result)
        return {"models": self._public() + models, "providers": report}

    def _public(self) -> list[dict[str, str]]:
        """The models file's names whose provider is configured, first."""
        public = []
        for name in self.registry.routes:
            try:
                provider, _ = self.registry.resolve(name)
            except InvalidInputError:
                continue
            public.append({"id": name, "provider": provider.name})
        return public

    async def find(self, full_name: str) -> dict[str, str]:
        """One model as `listing` shows it. A name the chat API would refuse is a
        ModelNotFoundError; a provider that lists nothing (Bedrock) answers for any name it
        accepts, as the model check does; one whose listing fails now is a 503."""
        try:
            provider, model = await self.registry.aresolve(full_name)
        except AmbiguousModelError:
            raise
        except InvalidInputError as exc:
            raise ModelNotFoundError(f"{exc.message}; {LISTED_AT}") from None
        if full_name in self.registry.routes:  # configuration says it: no listing asked
            return {"id": full_name, "provider": provider.name}
        if not provider.configured:
            raise ModelNotFoundError(
                f"the {provider.name} provider is not configured on this server; {LISTED_AT}"
            )
        try:
            known = await self._models_of(provider)
            if known and model not in known:
                known = await self._models_of(provider, missed=True)
        except Exception as exc:
            problem = _describe(provider.name, exc)["message"]
            raise UnavailableError(
                f"{provider.name} could not list its models right now: {problem}",
                headers={"Retry-After": LISTING_RETRY_AFTER},
            ) from None
        if known and model not in known:
            raise ModelNotFoundError(
                f"{provider.name} does not offer the model {model!r}; {LISTED_AT}"
            )
        return {"id": f"{provider.name}/{model}", "provider": provider.name}

    async def check(self, provider: Provider, model: str, field_name: str) -> None:
        """422 for a model the provider's own listing does not have; silent if it can't list."""
        try:
            known = await self._models_of(provider)
            if known and model not in known:
                known = await self._models_of(provider, missed=True)
        except Exception:
            return  # discovery is best effort: the call itself will say what is wrong
        if known and model not in known:
            raise UnknownModelError(
                f"{provider.name} does not offer the model {model!r}; {MODELS_HINT}",
                field=field_name,
            )


def _describe(provider: str, error: BaseException) -> dict[str, Any]:
    if isinstance(error, ProviderError):
        return error.failure.to_dict()
    if isinstance(error, TimeoutError):
        return {"code": "timeout", "message": f"{provider} did not list its models in time"}
    return {"code": "listing_failed", "message": f"{provider}: {type(error).__name__}"}

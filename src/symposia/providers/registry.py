"""The one resolver of model names: what a client names, to the provider that serves it.

A name is, in order:
1. a public name of the models file (MODELS_FILE): its `provider/model` target;
2. `provider/model` of a configured provider (the model part may hold more slashes:
   `openrouter/meta-llama/llama-3-8b-instruct`); a doubled prefix (`openai/openai/gpt-4o`,
   as litellm sends) is read once, unless the provider itself lists the longer name;
3. a bare name (`gpt-4o`, `claude-haiku-4-5`, or `openai/gpt-4o` when no `openai`
   provider is configured but OpenRouter lists that name): the one configured provider
   whose listing holds it, else the one its form names (`gpt-…`, `o3…` OpenAI; `claude-…`
   Anthropic). Two or more: an `AmbiguousModelError` naming them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator

from symposia.errors import (
    AmbiguousModelError,
    InvalidInputError,
    ProviderNotConfiguredError,
    UnknownModelError,
    UnknownProviderError,
)
from symposia.providers.base import Provider
from symposia.providers.pricing import Price
from symposia.providers.routes import Route

# Which provider serves a bare name, by its form, when no listing says.
HOME_BY_FORM: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(gpt-|chatgpt-|ft:gpt-|o\d+(-|$))"), "openai"),
    (re.compile(r"claude-"), "anthropic"),
)
LISTED_HINT = "GET /v1/models lists the models this server can use"

# Refreshes the listings of the configured providers; True: after a name was not found.
Refresh = Callable[[bool], Awaitable[None]]


def split_model(full_name: str, field: str = "model") -> tuple[str, str]:
    """`"openai/gpt-4o"` -> `("openai", "gpt-4o")`; the model part may hold more slashes."""
    provider, sep, model = full_name.partition("/")
    if not sep or not provider or not model:
        raise InvalidInputError(
            f"model {full_name!r} must be named provider/model, for example local/smollm2",
            field=field,
        )
    return provider, model


def ensure_configured(provider: str, configured: bool, key_env: str) -> None:
    """Refuse, as bad input, a model of a provider that has no credentials here."""
    if not configured:
        raise ProviderNotConfiguredError(
            f"the {provider} provider is not configured on this server: set {key_env}",
            field="model",
        )


class ProviderRegistry:
    """The providers this server knows, by prefix; the models file's routes; and what
    each provider last listed (`note_listing`, kept by the model catalog)."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        self._listed: dict[str, frozenset[str]] = {}
        self.routes: dict[str, Route] = {}
        self.refresh: Refresh | None = None
        for provider in providers:
            self.register(provider)

    def register(self, provider: Provider) -> None:
        self._providers[provider.name] = provider

    def use_routes(self, routes: dict[str, Route]) -> None:
        self.routes = dict(routes)

    def note_listing(self, provider: str, models: Iterable[str]) -> None:
        self._listed[provider] = frozenset(models)

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers))
            raise UnknownProviderError(
                f"unknown provider {name!r}; known providers: {known}", field="model"
            ) from None

    def resolve(self, name: str, field: str = "model") -> tuple[Provider, str]:
        """The provider and its own model name; raises a 4xx-class error naming `field`."""
        route = self.routes.get(name)
        try:
            return self._resolve(route.target if route else name)
        except InvalidInputError as exc:
            exc.field = field
            raise

    async def aresolve(self, name: str, field: str = "model") -> tuple[Provider, str]:
        """`resolve`, with the listings loaded first for a name that needs them, and
        refreshed once (throttled by the catalog) when none has it."""
        if self.refresh is None or not self._needs_listing(name):
            return self.resolve(name, field)
        await self.refresh(False)
        try:
            return self.resolve(name, field)
        except (UnknownModelError, UnknownProviderError, ProviderNotConfiguredError):
            await self.refresh(True)
            return self.resolve(name, field)

    def route_of(self, name: str) -> Route | None:
        return self.routes.get(name)

    def canonical(self, name: str) -> str:
        """`provider/model` for any name that resolves now (`name` itself otherwise): what
        prices and metrics know a model by."""
        try:
            provider, model = self.resolve(name)
        except InvalidInputError:
            return name
        return f"{provider.name}/{model}"

    def price_key(self, name: str) -> tuple[str, Price | None]:
        """The `provider/model` a price table knows `name` by, and the models file's
        own price for it if it gives one."""
        route = self.routes.get(name)
        return self.canonical(name), route.price if route else None

    def configured(self) -> dict[str, bool]:
        return {name: provider.configured for name, provider in self._providers.items()}

    def _needs_listing(self, name: str) -> bool:
        if name in self.routes:
            return False
        prefix, sep, _ = name.partition("/")
        provider = self._providers.get(prefix) if sep else None
        return provider is None or not provider.configured

    def _resolve(self, name: str) -> tuple[Provider, str]:
        prefix, sep, rest = name.partition("/")
        named = self._providers.get(prefix) if sep and rest else None
        if named is not None and named.configured:
            model = self._own_name(named, rest)
            named.check_model(model)
            return named, model
        candidates = self._serving(name)
        if len(candidates) == 1:
            return candidates[0], name
        if len(candidates) > 1:
            options = ", ".join(f"{p.name}/{name}" for p in candidates)
            raise AmbiguousModelError(
                f"more than one configured provider offers {name!r}: {options}; name one "
                "of them, or give the name a route in MODELS_FILE",
                field="model",
            )
        if named is not None:  # its provider is not configured: let it say what to set
            named.check_model(rest)
            return named, rest
        if sep and prefix and rest:
            self.get(prefix)  # an unknown provider: the error names the known ones
        raise UnknownModelError(
            f"no configured provider offers the model {name!r}; name it provider/model, "
            f"for example local/smollm2 ({LISTED_HINT})",
            field="model",
        )

    def _own_name(self, provider: Provider, rest: str) -> str:
        """The provider's own name for `rest`: `rest`, or one prefix fewer when the client
        doubled it (`openai/openai/gpt-4o`), or the whole name when the provider lists
        that instead (an OpenAI base URL at OpenRouter lists `openai/gpt-4o`)."""
        listed = self._listed.get(provider.name)
        if listed and rest in listed:
            return rest
        doubled = f"{provider.name}/"
        if rest.startswith(doubled):
            return self._own_name(provider, rest[len(doubled) :])
        if listed and f"{provider.name}/{rest}" in listed:
            return f"{provider.name}/{rest}"
        return rest

    def _serving(self, name: str) -> list[Provider]:
        """The configured providers that list `name`, else the one its form names."""
        configured = [p for p in self._providers.values() if p.configured]
        listing = [p for p in configured if name in self._listed.get(p.name, ())]
        if listing:
            return listing
        for form, home in HOME_BY_FORM:
            provider = self._providers.get(home)
            if form.match(name) and provider is not None and provider.configured:
                return [provider]
        return []

"""Maps the `provider/` prefix of a model name to the adapter that serves it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from symposia.errors import InvalidInputError, ProviderNotConfiguredError, UnknownProviderError
from symposia.providers.base import Provider


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
    """The providers this server knows, by prefix."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.register(provider)

    def register(self, provider: Provider) -> None:
        self._providers[provider.name] = provider

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

    def resolve(self, full_name: str, field: str = "model") -> tuple[Provider, str]:
        """The provider and its own model name; raises a 422-class error naming `field`."""
        provider_name, model = split_model(full_name, field)
        try:
            provider = self.get(provider_name)
            provider.check_model(model)
        except InvalidInputError as exc:
            exc.field = field
            raise
        return provider, model

    def configured(self) -> dict[str, bool]:
        return {name: provider.configured for name, provider in self._providers.items()}

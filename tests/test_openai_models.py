"""`GET /v1/models/{model}` where a provider's listing cannot say: it lists nothing
(Bedrock), or its listing fails right now (over HTTP: tests/test_openai_schema.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from symposia.errors import ModelNotFoundError, UnavailableError, UnknownModelError
from symposia.providers.base import CompletionRequest, Delta
from symposia.providers.registry import ProviderRegistry
from symposia.services.models import ModelCatalog


class Unlisted:
    """A provider like Bedrock: it serves models it cannot list, and knows some it lacks."""

    name = "unlisted"
    configured = True

    def __init__(self, listing: list[str] | Exception) -> None:
        self.listing = listing

    async def models(self) -> list[str]:
        if isinstance(self.listing, Exception):
            raise self.listing
        return self.listing

    def check_model(self, model: str) -> None:
        if model == "retired":
            raise UnknownModelError("retired is gone", field="model")

    def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        raise NotImplementedError


async def test_a_provider_that_lists_nothing_answers_for_the_names_it_accepts() -> None:
    catalog = ModelCatalog(ProviderRegistry([Unlisted([])]))
    assert await catalog.find("unlisted/any.model-v1:0") == {
        "id": "unlisted/any.model-v1:0",
        "provider": "unlisted",
    }
    with pytest.raises(ModelNotFoundError, match="retired is gone"):
        await catalog.find("unlisted/retired")


async def test_a_provider_whose_listing_fails_is_unavailable_not_missing() -> None:
    catalog = ModelCatalog(ProviderRegistry([Unlisted(TimeoutError())]))
    with pytest.raises(UnavailableError, match="did not list its models in time") as failed:
        await catalog.find("unlisted/m")
    assert failed.value.headers["Retry-After"] == "5"

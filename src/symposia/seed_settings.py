"""The default model from the settings the seed systems used: `LLM_PROVIDER` (the chat API
with a provider factory), `MODEL_NAME` (the OpenRouter conversations server) and
`BEDROCK_MODEL_ID` (the supervisor chat). Each says which model answers a request that names
none, which is what our `DEFAULT_MODEL` says: they build it when it is not set, and must
agree with it when it is, so that none is silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symposia.providers.registry import HOME_BY_FORM
from symposia.providers.routes import load_routes

if TYPE_CHECKING:
    from symposia.settings import Settings

# The model of each provider when LLM_PROVIDER names it with no MODEL_NAME (the first seed
# ran gpt-3.5-turbo's successor at OpenAI; the supervisor seed, Nova Lite on Bedrock).
PROVIDER_DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "openrouter": "openai/gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "bedrock": "amazon.nova-lite-v1:0",
    "local": "smollm2",
    "scripted": "echo",
}

# The remote provider a lone MODEL_NAME belongs to, by the one key configured.
_KEYED_PROVIDERS = (
    ("openai_api_key", "openai"),
    ("openrouter_api_key", "openrouter"),
    ("anthropic_api_key", "anthropic"),
)


def default_model_of(settings: Settings, *, explicit: bool) -> str:
    """DEFAULT_MODEL, or the one LLM_PROVIDER / MODEL_NAME / BEDROCK_MODEL_ID name; a
    ValueError naming the settings when they disagree or cannot be read."""
    provider = settings.llm_provider or _implied_provider(settings, explicit)
    if provider is None:
        return settings.default_model
    known = set(PROVIDER_DEFAULT_MODELS) | set(settings.openai_compatible)
    if provider not in known:
        raise ValueError(
            f"LLM_PROVIDER={provider} is not a provider: use one of {', '.join(sorted(known))}"
        )
    if settings.bedrock_model_id and provider != "bedrock":
        raise ValueError(
            f"BEDROCK_MODEL_ID is the default model on Bedrock, but the default provider is "
            f"{provider}: drop BEDROCK_MODEL_ID or set LLM_PROVIDER=bedrock"
        )
    name = settings.model_name
    if provider == "bedrock" and settings.bedrock_model_id:
        if name and name != settings.bedrock_model_id:
            raise ValueError("MODEL_NAME and BEDROCK_MODEL_ID name different models: keep one")
        name = settings.bedrock_model_id
    name = name or PROVIDER_DEFAULT_MODELS.get(provider)
    if not name:
        raise ValueError(f"LLM_PROVIDER={provider} needs MODEL_NAME, its model's name")
    if not explicit:
        return f"{provider}/{name}"
    agreed = _agreeing_default(settings, provider, known)
    if agreed is None:
        raise ValueError(
            f"DEFAULT_MODEL={settings.default_model} disagrees with "
            f"{_seed_names(settings)}, which name {provider}/{name}: set only one of them"
        )
    return agreed


def _agreeing_default(settings: Settings, provider: str, known: set[str]) -> str | None:
    """DEFAULT_MODEL as the default model when it names a model of `provider` (and the
    model MODEL_NAME / BEDROCK_MODEL_ID name, if set); None when it disagrees.

    `provider/model` must name that provider. A models-file name must route there. A bare
    name (or one whose first part is no provider: `meta-llama/llama-3-8b-instruct`) is read
    as LLM_PROVIDER's model, as MODEL_NAME is, and pinned to it (`gpt-3.5-turbo` with
    LLM_PROVIDER=openai is `openai/gpt-3.5-turbo`), unless its form names another provider
    (`claude-…` is Anthropic's)."""
    given = settings.default_model
    named_model = settings.model_name or settings.bedrock_model_id
    routes = load_routes(settings.models_file)
    if given in routes:
        target_provider, _, target_model = routes[given].target.partition("/")
        if target_provider != provider or (named_model and target_model != named_model):
            return None
        return given
    prefix, sep, rest = given.partition("/")
    if sep and prefix in known:
        return given if prefix == provider and (not named_model or rest == named_model) else None
    if named_model and given != named_model:
        return None
    home = next((home for form, home in HOME_BY_FORM if form.match(given)), None)
    if home is not None and home != provider:
        return None
    return f"{provider}/{given}"


def _implied_provider(settings: Settings, explicit: bool) -> str | None:
    """The provider MODEL_NAME or BEDROCK_MODEL_ID imply without LLM_PROVIDER."""
    if settings.bedrock_model_id:
        return "bedrock"
    if not settings.model_name:
        return None
    prefix, sep, _ = settings.default_model.partition("/")
    if (
        explicit
        and sep
        and prefix in set(PROVIDER_DEFAULT_MODELS) | set(settings.openai_compatible)
    ):
        return prefix
    keyed = [name for field, name in _KEYED_PROVIDERS if getattr(settings, field) is not None]
    if len(keyed) != 1:
        raise ValueError(
            "MODEL_NAME needs LLM_PROVIDER to say whose model it is "
            "(for example LLM_PROVIDER=openrouter)"
        )
    return keyed[0]


def _seed_names(settings: Settings) -> str:
    names = [
        name
        for name, value in (
            ("LLM_PROVIDER", settings.llm_provider),
            ("MODEL_NAME", settings.model_name),
            ("BEDROCK_MODEL_ID", settings.bedrock_model_id),
        )
        if value
    ]
    return " and ".join(names)

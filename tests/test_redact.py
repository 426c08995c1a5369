"""Redaction of secrets from provider messages (issue 10, point 7)."""

from __future__ import annotations

from symposia.errors import FAILURE_MESSAGE_MAX_CHARS, ProviderFailure
from symposia.providers.failures import from_status
from symposia.security.redact import MASK, redact, remember_secrets
from tests.conftest import make_settings


def test_configured_secrets_and_key_shapes_are_masked() -> None:
    remember_secrets(["plain-configured-value"])
    cases = {
        "Incorrect API key provided: Bearer abc.def": "Incorrect API key provided: Bearer " + MASK,
        "key sk-proj-0123456789abcdef rejected": f"key {MASK} rejected",
        "x-api-key sk-ant-api03-AbCdEf012345 invalid": f"x-api-key {MASK} invalid",
        "id AKIAIOSFODNN7EXAMPLE denied": f"id {MASK} denied",
        "sym_0123456789ab_" + "A" * 43: MASK,
        "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end": f"secret {MASK} end",
        "echo plain-configured-value here": f"echo {MASK} here",
    }
    for text, expected in cases.items():
        assert redact(text) == expected


def test_ordinary_provider_text_is_left_alone() -> None:
    for text in (
        "model claude-3-5-sonnet-20241022 not found",
        "see https://docs.anthropic.com/en/api/errors",
        "Rate limit reached for requests; token limit exceeded",
        "meta-llama/llama-3.1-70b-instruct is overloaded",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop",  # long but not random-looking
    ):
        assert redact(text) == text


def test_settings_list_every_configured_secret() -> None:
    settings = make_settings(
        openai_api_key="sk-one",
        anthropic_api_key="sk-ant-two",
        openai_compatible={"vllm": {"base_url": "http://gpu:8000/v1", "api_key": "three"}},
    )
    assert set(settings.secret_values()) == {"sk-one", "sk-ant-two", "three"}


def test_a_failure_is_redacted_where_it_is_built_before_it_is_cut() -> None:
    key = "sk-" + "k3y" * 20
    remember_secrets([key])
    echoed = from_status(
        401, f"Incorrect API key provided: {key}", provider="openai", model="m", key_env="K"
    )
    assert key not in echoed.message
    assert MASK in echoed.message
    # A key straddling the length limit: no piece of it survives the cut.
    padded = ProviderFailure("x", "a" * (FAILURE_MESSAGE_MAX_CHARS - 20) + " " + key, "p", "m")
    assert len(padded.message) <= FAILURE_MESSAGE_MAX_CHARS
    assert "k3yk3y" not in padded.message
    assert key not in str(ProviderFailure("x", "m", "p", "m", suggestion=f"try {key}").to_dict())

"""Anthropic's messages API through the official `anthropic` SDK.

Anthropic's rules: the system prompt is a top-level field, roles strictly alternate
(neighbouring same-role messages are merged), and the first message is the user's. The
API of SDK 2.x has no sampling temperature, so a bot's temperature is not sent here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from symposia.errors import ProviderError
from symposia.providers.base import (
    PROVIDER_MAX_TOKENS_DEFAULT,
    CompletionRequest,
    Delta,
    Feature,
    StreamEnd,
    TextDelta,
    system_and_alternating,
)
from symposia.providers.config import ProviderConfig
from symposia.providers.failures import not_configured, stream_failure
from symposia.providers.openai_adapter import sdk_failure
from symposia.providers.sdk_adapter import SdkAdapter

if TYPE_CHECKING:
    import anthropic

STOP_REASONS = {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop"}


class AnthropicAdapter(SdkAdapter["anthropic.AsyncAnthropic"]):
    """Anthropic requires `max_tokens`: a request that sets none gets `max_tokens_default`
    (the setting PROVIDER_MAX_TOKENS_DEFAULT)."""

    features: frozenset[Feature] = frozenset({"tools"})

    def __init__(
        self, config: ProviderConfig, max_tokens_default: int = PROVIDER_MAX_TOKENS_DEFAULT
    ) -> None:
        super().__init__(config)
        self.max_tokens_default = max_tokens_default

    def _make_client(self) -> anthropic.AsyncAnthropic:
        import anthropic

        return anthropic.AsyncAnthropic(**self._client_options())

    async def models(self) -> list[str]:
        import anthropic

        try:
            page = await self.client.models.list(limit=1000)
            return sorted([model.id async for model in page])
        except anthropic.APIError as exc:
            raise ProviderError(sdk_failure(exc, self.name, "", self.config.key_env)) from exc

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        system, turns = system_and_alternating(request.messages)
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in turns],
            "max_tokens": request.max_tokens or self.max_tokens_default,
            # No temperature: the current Messages API (SDK 2.x) no longer takes one.
            "stream": True,
        }
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        return params

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        import anthropic
        import httpx2

        if not self.configured:
            raise ProviderError(not_configured(self.name, self.config.key_env))
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        finish: str | None = None
        try:
            stream = await self.client.messages.create(**self._params(request))
            async with stream:
                async for event in stream:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        if event.delta.text:
                            yield TextDelta(event.delta.text)
                    elif event.type == "message_start":
                        prompt_tokens = event.message.usage.input_tokens
                    elif event.type == "message_delta":
                        completion_tokens = event.usage.output_tokens
                        reason = event.delta.stop_reason
                        finish = STOP_REASONS.get(reason, reason) if reason else None
        except anthropic.APIError as exc:
            failure = sdk_failure(exc, self.name, request.model, self.config.key_env)
            raise ProviderError(failure) from exc
        except (httpx2.HTTPError, json.JSONDecodeError) as exc:
            failure = stream_failure(self.name, request.model, type(exc).__name__)
            raise ProviderError(failure) from exc
        yield StreamEnd(finish, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

"""A request to OpenAI's Responses API, as the service takes it: what the API validated,
with no trace of how it arrived (the request body is the API's; this is what it means)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The chat-completions names of Responses fields that travel as a model call's options,
# and what a refusal calls them here (`reasoning.effort`, not `reasoning_effort`).
CHAT_NAMES = {
    "max_completion_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
}


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """One `POST /v1/responses`. `input` is text (one user message) or input items; `tools`,
    `tool_choice` and `text` are OpenAI's shapes, read by `services.response_items`.
    `user` is echoed in the Response object, as OpenAI does."""

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    user: str | None = field(default=None)
    # The fields with a chat-completions equivalent, under their chat names (`CHAT_NAMES`),
    # placed per provider like the chat fields (`providers.request_fields`).
    options: dict[str, Any] = field(default_factory=dict)

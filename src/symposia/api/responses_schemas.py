"""The request body of OpenAI's Responses API (`POST /v1/responses`), as Symposia honours it.

Each field is placed by `request_fields.RESPONSES`: the ones with a chat-completions
equivalent travel as the model call's `options` (`chat_options`), placed per provider
like the chat fields; one no provider honours is refused with a 400 naming it, unless
its value asks for nothing (`truncation: "disabled"`): clients trust what they send to
arrive.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from symposia.api.schemas import ModelName, no_nul
from symposia.domain.response_request import ResponsesRequest
from symposia.errors import InvalidInputError
from symposia.providers.request_fields import neutral

# Fields sent to the model call under the same name (as chat-completions fields).
SAME_NAME = (
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "service_tier",
    "moderation",
)
NOT_REFUSED = frozenset({*SAME_NAME, "reasoning", "stream_options"})
ITEMS_MAX = 2048


class ResponsesBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: ModelName
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=64)
    store: bool = True
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_output_tokens: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _checked(self) -> ResponsesBody:
        if isinstance(self.input, list) and len(self.input) > ITEMS_MAX:
            raise ValueError(f"input has more than {ITEMS_MAX} items")
        for value in (self.input, self.instructions):
            if isinstance(value, str):
                no_nul(value)
        return self

    def to_request(self) -> ResponsesRequest:
        """What the service takes; a field it would not honour is refused first."""
        self.refuse_unhonoured()
        user = (self.model_extra or {}).get("user")
        return ResponsesRequest(
            model=self.model,
            input=self.input,
            instructions=self.instructions,
            previous_response_id=self.previous_response_id,
            store=self.store,
            stream=self.stream,
            temperature=self.temperature,
            top_p=self.top_p,
            max_output_tokens=self.max_output_tokens,
            metadata=self.metadata,
            tools=self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            text=self.text,
            user=user if isinstance(user, str) else None,
            options=self.chat_options(),
        )

    def refuse_unhonoured(self) -> None:
        """A 400 naming the first field sent that no provider would honour here."""
        for name, value in (self.model_extra or {}).items():
            if name in NOT_REFUSED or neutral(name, value) or value in (False, [], {}):
                continue
            raise InvalidInputError(f"`{name}` is not supported by this server", name)
        reasoning = (self.model_extra or {}).get("reasoning")
        if reasoning is not None and not isinstance(reasoning, dict):
            raise InvalidInputError("`reasoning` must be an object", "reasoning")
        if isinstance(reasoning, dict):
            for name, value in reasoning.items():
                if name != "effort" and value is not None:
                    raise InvalidInputError(
                        f"`reasoning.{name}` is not supported by this server", f"reasoning.{name}"
                    )

    def chat_options(self) -> dict[str, Any]:
        """The fields of this body that are chat-completions fields of the model call,
        under their chat names (`CHAT_NAMES`), as the client sent them."""
        extra = self.model_extra or {}
        options = {name: extra[name] for name in SAME_NAME if name in extra}
        if self.max_output_tokens is not None:
            options["max_completion_tokens"] = self.max_output_tokens
        reasoning = extra.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
            options["reasoning_effort"] = reasoning["effort"]
        if self.text is not None and self.text.get("verbosity") is not None:
            options["verbosity"] = self.text["verbosity"]
        return options

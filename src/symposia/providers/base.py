"""The one interface every model provider implements, and the deltas it streams.

Adapters translate their vendor's stream into `TextDelta`s and `ToolCallDelta`s followed
by one `StreamEnd` (why it ended, and the usage); nothing past the adapter knows what a
vendor chunk looked like. A request's optional parameters are None when the client did
not set them: then they are not sent, and the model's own defaults apply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from symposia.providers.request_fields import ProviderKind

# What a provider that requires max_tokens is sent when the caller set none (the setting
# PROVIDER_MAX_TOKENS_DEFAULT): high enough not to cut a normal answer.
PROVIDER_MAX_TOKENS_DEFAULT = 4096

ChatRole = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for: `arguments` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a prompt. An assistant's may carry the `tool_calls` it made; a
    `tool` message answers the call `tool_call_id` with `content`."""

    role: ChatRole
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; `parameters` is its JSON schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: any JSON object (`json_object`), or one following `schema`
    (`json_schema`, with OpenAI's `name`, `description` and `strict`)."""

    type: Literal["json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


Truncation = Literal["auto", "disabled"]

# "auto", "none", "required" (some tool), or a tool's name (that one).
ToolChoice = Literal["auto", "none", "required"] | str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One model call. `model` is the provider's own name (no `provider/` prefix).

    None means "not set by the caller": the adapter does not send it (an adapter whose
    provider requires a value, such as Anthropic's max_tokens, sends its documented one).
    `options` are the client's other OpenAI fields, as it sent them (`request_fields`):
    an OpenAI-compatible adapter sends them as they are, the others translate theirs.
    """

    model: str
    messages: Sequence[ChatMessage]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: ResponseFormat | None = None
    # A prompt longer than the model's context: refused with context_length_exceeded
    # ("disabled", as OpenAI and its Responses API's default do), or fitted by dropping
    # the oldest turns ("auto": runs and conversations, whose history only grows).
    truncation: Truncation = "disabled"
    # Runs and conversations: an answer that reaches max_tokens ends at a sentence end
    # rather than mid-word (finish `length` still), where the provider can (the local
    # model); OpenAI's /v1 cuts at max_tokens exactly, so its requests leave this off.
    end_at_sentence: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text of the answer; `logprobs`, when the request asked for them and the provider
    gave them, are OpenAI's per-token entries (`{token, logprob, bytes, top_logprobs}`)."""

    text: str
    logprobs: tuple[Any, ...] | None = None
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call number `index` of this answer: the first piece of a call
    carries its `id` and `name`, every piece a fragment of its JSON `arguments`."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """Last item of a stream: why it ended and, when the provider says, the token counts
    and the model that answered (its own name for it, as a trace records it)."""

    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    kind: Literal["end"] = "end"
    model: str | None = None


Delta = TextDelta | ToolCallDelta | StreamEnd


# What a request may ask beyond plain text, which not every provider can honour.
Feature = Literal["tools", "seed", "logprobs", "response_format", "temperature", "top_p"]


def features_of(request: CompletionRequest) -> dict[Feature, str]:
    """The features `request` uses, each with the parameter that asks for it."""
    used: dict[Feature, str] = {}
    if request.temperature is not None:
        used["temperature"] = "temperature"
    if request.top_p is not None:
        used["top_p"] = "top_p"
    if request.tools or request.tool_choice is not None:
        used["tools"] = "tools"
    elif any(m.role == "tool" or m.tool_calls for m in request.messages):
        used["tools"] = "messages"  # tool calls and results in the history
    if request.seed is not None:
        used["seed"] = "seed"
    if request.logprobs or request.top_logprobs is not None:
        used["logprobs"] = "logprobs" if request.logprobs else "top_logprobs"
    if request.response_format is not None:
        used["response_format"] = "response_format"
    return used


@runtime_checkable
class Provider(Protocol):
    """A source of model completions, addressed by the `provider/` prefix of a model name.
    `features` says which of the optional `Feature`s it honours; `kind` which column of
    the `request_fields` tables places the client's other fields."""

    name: str
    kind: ProviderKind
    features: frozenset[Feature]

    @property
    def configured(self) -> bool:
        """Whether it can serve requests now (a key is set, the model file exists...)."""
        ...

    def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        """Stream the completion; cancelling the iteration cancels the call."""
        ...

    async def models(self) -> list[str]:
        """The provider's own model names this server can use."""
        ...

    def check_model(self, model: str) -> None:
        """Raise `UnknownModelError` for a model this provider certainly does not offer."""
        ...


def merge_consecutive(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Join neighbouring messages of the same role, for models that need strict alternation."""
    merged: list[ChatMessage] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            previous = merged[-1]
            merged[-1] = ChatMessage(previous.role, f"{previous.content}\n\n{message.content}")
        else:
            merged.append(message)
    return merged


# Providers that need a user turn first get this one when the assistant would open
# (`tool_turns.block_turns`).
OPENING_USER_TURN = "(The conversation begins.)"

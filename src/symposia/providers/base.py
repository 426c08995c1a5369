"""The one interface every model provider implements, and the deltas it streams.

Adapters translate their vendor's stream into `TextDelta`s followed by one `StreamEnd`;
nothing past the adapter knows what a vendor chunk looked like.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from symposia.domain.models import Role


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One model call. `model` is the provider's own name (no `provider/` prefix)."""

    model: str
    messages: Sequence[ChatMessage]
    temperature: float = 0.7
    max_tokens: int = 256
    top_p: float | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """Last item of a stream: why it ended and, when the provider says, the token counts."""

    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    kind: Literal["end"] = "end"


Delta = TextDelta | StreamEnd


@runtime_checkable
class Provider(Protocol):
    """A source of model completions, addressed by the `provider/` prefix of a model name."""

    name: str

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


# Providers that need a user turn first get this one when the assistant would open.
OPENING_USER_TURN = "(The conversation begins.)"


def system_and_alternating(messages: Sequence[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    """Split out the system prompt; merge the rest so roles alternate, the user first.

    Anthropic's and Bedrock's rules; other adapters pass messages as they are.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    turns = merge_consecutive([m for m in messages if m.role != "system"])
    if not turns or turns[0].role != "user":
        turns.insert(0, ChatMessage("user", OPENING_USER_TURN))
    return system, turns

"""The request body of OpenAI's chat completions, as far as Symposia honours it.

Unknown fields are ignored, as OpenAI clients send many (`logit_bias`, `seed`, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from symposia.api.schemas import ModelName, no_nul
from symposia.providers.base import ChatMessage, ChatRole, CompletionRequest

MAX_STOP_SEQUENCES = 4
ROLES: dict[str, ChatRole] = {
    "developer": "system",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Loose):
    type: str
    text: str | None = None


class ChatMessageIn(_Loose):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _storable(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        """Checked here rather than on each branch of the union, for a readable error."""
        for text in [value] if isinstance(value, str) else [p.text for p in value or ()]:
            if text is not None:
                no_nul(text)
        return value

    def chat_message(self) -> ChatMessage:
        return ChatMessage(ROLES[self.role], self.text())

    def text(self) -> str:
        """The message as plain text; text parts are joined, other parts refused."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise ValueError(f"content parts of type {part.type!r} are not supported")
            texts.append(part.text)
        return "".join(texts)


class StreamOptions(_Loose):
    include_usage: bool = False


class ChatCompletionBody(_Loose):
    model: ModelName
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)
    n: int | None = Field(default=None, ge=1, le=1)

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def completion_request(self) -> CompletionRequest:
        """The model call this body asks for; what the client did not set stays None
        (not sent: the model's own defaults apply). ValueError for unusable messages."""
        return CompletionRequest(
            model="",
            messages=[m.chat_message() for m in self.messages],
            temperature=self.temperature,
            max_tokens=self.token_limit,
            top_p=self.top_p,
            stop=self.stop_sequences(),
        )

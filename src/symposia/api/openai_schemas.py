"""The request body of OpenAI's chat completions.

The fields Symposia reads are declared here; every other field the client sent is kept
as it was sent (`model_extra`, no copy) and travels as the call's `options`, which
`request_fields` places per provider: passed on, translated, or refused with a 400
naming it. Tools come as `tools`/`tool_choice` or as the legacy `functions`/
`function_call`, which are read as tools (a legacy assistant `function_call` and the
`function` message answering it get an id of their own so they pair up).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from symposia.api.schemas import ModelName, no_nul
from symposia.providers.base import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    ResponseFormat,
    Tool,
    ToolCall,
)

MAX_STOP_SEQUENCES = 4
ROLES: dict[str, ChatRole] = {
    "developer": "system",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
TOOL_CHOICES = ("auto", "none", "required")
LEGACY_CALL_ID = "call_legacy_{}"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Loose):
    type: str
    text: str | None = None


class FunctionIn(_Loose):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def tool(self) -> Tool:
        return Tool(self.name, self.description, self.parameters, self.strict)


class ToolIn(_Loose):
    type: Literal["function"]
    function: FunctionIn


class NamedFunction(_Loose):
    name: str = Field(min_length=1)


class NamedToolChoice(_Loose):
    type: Literal["function"]
    function: NamedFunction


class FunctionCallIn(_Loose):
    name: str = Field(min_length=1)
    arguments: str = ""


class ToolCallIn(_Loose):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Loose):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    function_call: FunctionCallIn | None = None  # legacy: an assistant's one call

    @field_validator("content")
    @classmethod
    def _storable(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        """Checked here rather than on each branch of the union, for a readable error."""
        for text in [value] if isinstance(value, str) else [p.text for p in value or ()]:
            if text is not None:
                no_nul(text)
        return value

    def chat_message(self, legacy_id: str | None) -> ChatMessage:
        """As a model call's message; `legacy_id` pairs a legacy `function_call` with
        the `function` message answering it. ValueError for what cannot be used."""
        calls = tuple(
            ToolCall(c.id, c.function.name, c.function.arguments) for c in self.tool_calls or ()
        )
        if self.function_call is not None and legacy_id is not None:
            call = self.function_call
            calls = (*calls, ToolCall(legacy_id, call.name, call.arguments))
        if calls and self.role != "assistant":
            raise ValueError(f"a {self.role} message cannot carry tool calls")
        call_id = self.tool_call_id if self.role == "tool" else legacy_id
        if self.role in ("tool", "function") and not call_id:
            raise ValueError(f"a {self.role} message needs the tool_call_id it answers")
        return ChatMessage(
            ROLES[self.role],
            self.text(),
            tool_calls=calls,
            tool_call_id=call_id if self.role in ("tool", "function") else None,
        )

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


class JsonSchemaIn(_Loose):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    # `schema` shadows a BaseModel attribute, hence the alias.
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(_Loose):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaIn | None = None

    def format(self) -> ResponseFormat | None:
        """None for plain text (the default); ValueError for a json_schema without one."""
        if self.type == "text":
            return None
        if self.type == "json_object":
            return ResponseFormat("json_object")
        spec = self.json_schema
        if spec is None:
            raise ValueError("response_format json_schema needs its json_schema")
        return ResponseFormat(
            "json_schema", spec.name, spec.json_schema, spec.strict, spec.description
        )


class StreamOptions(_Loose):
    include_usage: bool = False


class ChatCompletionBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: ModelName
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)
    tools: list[ToolIn] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionIn] | None = None  # legacy tools
    function_call: Literal["auto", "none"] | NamedFunction | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormatIn | None = None

    @property
    def legacy(self) -> bool:
        """Whether the client speaks the legacy `functions` dialect: it is answered in it
        (`function_call`, finish reason `function_call`)."""
        return self.functions is not None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value > 1:
            raise ValueError(
                "n > 1 is not supported: Symposia answers one choice per request; "
                "send n requests instead"
            )
        return value

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
        if self.tools is not None and self.functions is not None:
            raise ValueError("send tools or the legacy functions, not both")
        tools = [t.function.tool() for t in self.tools or ()]
        tools += [f.tool() for f in self.functions or ()]
        asked = self.tool_choice if self.tool_choice is not None else self.function_call
        choice: str | None = None
        if isinstance(asked, NamedToolChoice):
            choice = asked.function.name
        elif isinstance(asked, NamedFunction):
            choice = asked.name
        else:
            choice = asked
        return CompletionRequest(
            model="",
            messages=self._chat_messages(),
            temperature=self.temperature,
            max_tokens=self.token_limit,
            top_p=self.top_p,
            stop=self.stop_sequences(),
            tools=tuple(tools),
            tool_choice=choice,
            parallel_tool_calls=False if self.legacy else self.parallel_tool_calls,
            seed=self.seed,
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs,
            response_format=self.response_format.format() if self.response_format else None,
            options=self._options(),
        )

    def _options(self) -> dict[str, Any]:
        """The fields sent that are not read here, as sent; max_completion_tokens too (it
        is read as the token limit, and an OpenAI upstream gets it under that name)."""
        options = self.model_extra or {}
        if self.max_completion_tokens is not None:
            options = {**options, "max_completion_tokens": self.max_completion_tokens}
            if self.max_tokens is not None:
                options["max_tokens"] = self.max_tokens
        return options

    def _chat_messages(self) -> list[ChatMessage]:
        messages: list[ChatMessage] = []
        legacy = 0
        for message in self.messages:
            legacy_id: str | None = None
            if message.function_call is not None:
                legacy += 1
                legacy_id = LEGACY_CALL_ID.format(legacy)
            elif message.role == "function":
                legacy_id = LEGACY_CALL_ID.format(legacy)
            messages.append(message.chat_message(legacy_id))
        return messages

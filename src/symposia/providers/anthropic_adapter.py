"""Anthropic's messages API through the official `anthropic` SDK.

Anthropic's rules: the system prompt is a top-level field, roles strictly alternate
(neighbouring same-role messages are merged), and the first message is the user's. Tools
are Anthropic's `tool_use` and `tool_result` blocks, ids preserved, and a streamed call's
`input_json_delta`s its argument pieces (`tool_turns`). The
API of SDK 2.x has no sampling temperature, so a bot's temperature is not sent here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from symposia.errors import ProviderError
from symposia.observability.tracing import outgoing_headers
from symposia.providers.base import (
    PROVIDER_MAX_TOKENS_DEFAULT,
    CompletionRequest,
    Delta,
    Feature,
    StreamEnd,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from symposia.providers.config import ProviderConfig
from symposia.providers.failures import cut_short, not_configured, stream_failure
from symposia.providers.openai_adapter import sdk_failure
from symposia.providers.request_fields import TRANSLATED_VALUES, ProviderKind
from symposia.providers.sdk_adapter import SdkAdapter
from symposia.providers.tool_turns import (
    NO_PARAMETERS,
    ToolResult,
    Turn,
    answer_tool,
    arguments_of,
    block_turns,
)

if TYPE_CHECKING:
    import anthropic

# Models without Anthropic's native structured output (`output_config.format`, generally
# available in the Messages API and in SDK 2.x, no beta header): the Claude 3 family and the
# first Claude 4 models (Opus 4 and Sonnet 4; Opus 4.1, Sonnet 4.5, Haiku 4.5 and every later
# model have it). For them a response_format becomes a tool the model must call, which
# leaves no room for the client's own tools. A prefix of the provider's model name.
FORCED_TOOL_MODELS = (
    "claude-2",
    "claude-instant",
    "claude-3",
    "claude-opus-4-0",
    "claude-opus-4-20",
    "claude-sonnet-4-0",
    "claude-sonnet-4-20",
)

STOP_REASONS = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicAdapter(SdkAdapter["anthropic.AsyncAnthropic"]):
    """Anthropic requires `max_tokens`: a request that sets none gets `max_tokens_default`
    (the setting PROVIDER_MAX_TOKENS_DEFAULT)."""

    # No temperature or top_p: the Messages API of SDK 2.x takes neither, so a client
    # that sets one on /v1 is told so (a 400), rather than have it dropped.
    kind: ProviderKind = "anthropic"
    features: frozenset[Feature] = frozenset({"tools", "response_format"})

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
        system, turns = block_turns(request.messages)
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": t.role, "content": _content(t)} for t in turns],
            "max_tokens": request.max_tokens or self.max_tokens_default,
            # No temperature: the current Messages API (SDK 2.x) no longer takes one.
            "stream": True,
        }
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        if request.tools:
            params["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request)
        if choice is not None:
            params["tool_choice"] = choice
        output_format = self._output_format(request)
        if output_format is not None:  # structured output, beside any tools of the client
            params["output_config"] = {"format": output_format}
        elif (forced := answer_tool(request, self._forced_tool_reason(request))) is not None:
            params["tools"] = [_tool(forced)]  # structured output: a tool the model must call
            params["tool_choice"] = {"type": "tool", "name": forced.name}
        if request.options:
            _translate_options(request.options, params)
        return params

    @staticmethod
    def _output_format(request: CompletionRequest) -> dict[str, Any] | None:
        """Anthropic's native structured output for a `json_schema` response_format, on a
        model that has it: the schema made as the API takes it (every object closed, the
        constraints it does not enforce moved to descriptions) by the SDK's own
        `transform_schema`, as its `parse` does. `json_object` (any object: no closed
        schema holds it) and older models take the forced tool instead."""
        fmt = request.response_format
        if fmt is None or fmt.type != "json_schema" or not fmt.schema:
            return None
        if request.model.startswith(FORCED_TOOL_MODELS):
            return None
        import anthropic

        try:
            schema = anthropic.transform_schema(fmt.schema)
        except (ValueError, TypeError, AttributeError):
            schema = fmt.schema  # a shape it does not know: the API judges it as sent
        return {"type": "json_schema", "schema": schema}

    def _forced_tool_reason(self, request: CompletionRequest) -> str:
        """Who cannot take response_format with tools, for the 400 that says so."""
        fmt = request.response_format
        if fmt is not None and fmt.type == "json_object":
            return f"{self.name} provider with json_object (use json_schema)"
        return f"{self.name} model {request.model} (no native structured output)"

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        import anthropic
        import httpx2

        if not self.configured:
            raise ProviderError(not_configured(self.name, self.config.key_env))
        params = self._params(request)
        if (trace_headers := outgoing_headers()) is not None:  # tracing on: the call's span
            params["extra_headers"] = trace_headers
        # The forced tool's input is the answer's text (native structured output is text).
        reader = _Reader(request.response_format is not None and "output_config" not in params)
        try:
            stream = await self.client.messages.create(**params)
            async with stream:
                async for event in stream:
                    delta = reader.read(event)
                    if delta is not None:
                        yield delta
            if not reader.stopped:  # the body ended cleanly, but before the message did
                raise ProviderError(cut_short(self.name, request.model, "message_stop"))
        except anthropic.APIError as exc:
            failure = sdk_failure(exc, self.name, request.model, self.config.key_env)
            raise ProviderError(failure) from exc
        except (httpx2.HTTPError, json.JSONDecodeError) as exc:
            failure = stream_failure(self.name, request.model, type(exc).__name__)
            raise ProviderError(failure) from exc
        yield StreamEnd(
            reader.finish, reader.prompt_tokens, reader.completion_tokens, model=reader.model
        )


@dataclass(slots=True)
class _Reader:
    """What the events of one message say: its deltas, why it ended, its usage, and
    whether `message_stop` came (the answer is whole). `structured`: the forced tool's
    input is the answer's text, and its call no tool call."""

    structured: bool
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish: str | None = None
    model: str | None = None
    stopped: bool = False
    calls: dict[int, int] = field(default_factory=dict)  # tool call number by block

    def read(self, event: Any) -> Delta | None:
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                return TextDelta(delta.text)
            if delta.type == "input_json_delta" and delta.partial_json:
                if self.structured:
                    return TextDelta(delta.partial_json)
                index = self.calls.get(event.index)  # None: not a tool_use
                if index is not None:
                    return ToolCallDelta(index, arguments=delta.partial_json)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "tool_use" and not self.structured:
                self.calls[event.index] = len(self.calls)
                return ToolCallDelta(self.calls[event.index], block.id, block.name)
        elif kind == "message_start":
            self.prompt_tokens = event.message.usage.input_tokens
            self.model = event.message.model
        elif kind == "message_delta":
            self.completion_tokens = event.usage.output_tokens
            reason = event.delta.stop_reason
            self.finish = STOP_REASONS.get(reason, reason) if reason else None
            if self.structured and self.finish == "tool_calls":
                self.finish = "stop"  # the forced tool's call is the answer
        elif kind == "message_stop":
            self.stopped = True
        return None


def _content(turn: Turn) -> str | list[dict[str, Any]]:
    """A turn's content: its text, or its blocks once tools are involved (a tool's
    results first, as Anthropic requires of the turn that answers calls)."""
    if turn.text_only:
        return turn.text()
    results, others = [], []
    for block in turn.blocks:
        if isinstance(block, ToolResult):
            results.append(
                {"type": "tool_result", "tool_use_id": block.call_id, "content": block.content}
            )
        elif isinstance(block, ToolCall):
            others.append(
                {
                    "type": "tool_use",
                    "id": block.id,
                    "name": block.name,
                    "input": arguments_of(block),
                }
            )
        elif block:
            others.append({"type": "text", "text": block})
    return [*results, *others]


def _tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters or NO_PARAMETERS}
    if tool.description is not None:
        spec["description"] = tool.description
    if tool.strict is not None:
        spec["strict"] = tool.strict
    return spec


def _tool_choice(request: CompletionRequest) -> dict[str, Any] | None:
    """OpenAI's tool_choice in Anthropic's terms ("required" is "any"), with
    parallel_tool_calls false as `disable_parallel_tool_use`."""
    choice = request.tool_choice
    if choice is None and request.parallel_tool_calls is not False:
        return None
    if choice is None or choice == "auto":
        mapped: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    else:
        mapped = {"type": "tool", "name": choice}
    if request.parallel_tool_calls is False:
        mapped["disable_parallel_tool_use"] = True
    return mapped


def _translate_options(options: Mapping[str, Any], params: dict[str, Any]) -> None:
    """The client's other OpenAI fields that Anthropic has an equivalent of, as
    `request_fields` places them (the service refused the rest, and the values these
    translations do not know, before the call)."""
    values = TRANSLATED_VALUES["anthropic"]
    user = options.get("safety_identifier") or options.get("user")
    if user is not None:
        params["metadata"] = {"user_id": user}
    effort = options.get("reasoning_effort")
    if effort is not None:
        params.setdefault("output_config", {})["effort"] = values["reasoning_effort"][effort]
    tier = options.get("service_tier")
    if tier is not None:
        params["service_tier"] = values["service_tier"][tier]

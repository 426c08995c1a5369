"""A conversation as the turns of the block-based APIs (Anthropic's, Bedrock's Converse).

Their rules: the system prompt apart, strict user/assistant alternation with the user
first, and tool traffic as content blocks: an assistant's calls are blocks of its turn,
a tool's result a block of the next user turn. Each adapter renders the neutral blocks
below in its own format; a turn of text only stays one text, as before tools.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from symposia.errors import InvalidInputError, UnsupportedParameterError
from symposia.providers.base import (
    OPENING_USER_TURN,
    ChatMessage,
    CompletionRequest,
    ResponseFormat,
    Tool,
    ToolCall,
)

# Structured output on an API without it: the answer is the input of a tool the model
# must call, named after the schema (or this), and its input is streamed as the text.
ANSWER_TOOL = "json_answer"
ANSWER_TOOL_DESCRIPTION = "Give your whole answer as this tool's input."
# An input schema for a tool that declares no parameters.
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    content: str


Block = str | ToolCall | ToolResult


@dataclass(slots=True)
class Turn:
    role: Literal["user", "assistant"]
    blocks: list[Block] = field(default_factory=list)

    @property
    def text_only(self) -> bool:
        return all(isinstance(block, str) for block in self.blocks)

    def text(self) -> str:
        return "\n\n".join(block for block in self.blocks if isinstance(block, str))


def block_turns(messages: Sequence[ChatMessage]) -> tuple[str | None, list[Turn]]:
    """The system prompt, and the other messages as alternating turns, the user first."""
    system = "\n\n".join(m.content for m in messages if m.role == "system") or None
    turns: list[Turn] = []
    for message in messages:
        if message.role == "system":
            continue
        role: Literal["user", "assistant"] = "assistant" if message.role == "assistant" else "user"
        blocks: list[Block] = []
        if message.role == "tool":
            blocks.append(ToolResult(message.tool_call_id or "", message.content))
        elif message.content or not message.tool_calls:
            blocks.append(message.content)
        blocks.extend(message.tool_calls)
        if turns and turns[-1].role == role:
            turns[-1].blocks.extend(blocks)
        else:
            turns.append(Turn(role, blocks))
    if not turns or turns[0].role != "user":
        turns.insert(0, Turn("user", [OPENING_USER_TURN]))
    return system, turns


def arguments_of(call: ToolCall) -> dict[str, Any]:
    """A call's JSON arguments as the object these APIs want; bad JSON is the client's."""
    if not call.arguments.strip():
        return {}
    try:
        value = json.loads(call.arguments)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"the arguments of tool call {call.id!r} are not a JSON object", "messages"
        )
    return value


def answer_tool(request: CompletionRequest, provider: str) -> Tool | None:
    """The forced tool standing for `request`'s response_format, or None without one.
    Tools of the client's own alongside are refused: the model could not call them.
    `provider` names what cannot, in the refusal ("Bedrock provider", "anthropic model
    claude-3-haiku (...)")."""
    fmt: ResponseFormat | None = request.response_format
    if fmt is None:
        return None
    if request.tools or request.tool_choice is not None:
        what = provider if " " in provider else f"{provider} provider"
        raise UnsupportedParameterError(
            f"response_format together with tools is not supported by the {what}; "
            "send one or the other",
            "response_format",
        )
    return Tool(
        fmt.name or ANSWER_TOOL,
        fmt.description or ANSWER_TOOL_DESCRIPTION,
        fmt.schema or {"type": "object"},
    )

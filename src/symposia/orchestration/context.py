"""Fit a conversation into a model's context budget, dropping the oldest turns first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from symposia.domain.models import Message
from symposia.providers.base import ChatMessage, Tool, ToolCall

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(message: ChatMessage) -> int:
    return len(message.content) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def fit(messages: Sequence[ChatMessage], budget_tokens: int) -> list[ChatMessage]:
    """Keep every system message and the newest others that fit; always the last one."""
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    room = budget_tokens - sum(estimate_tokens(m) for m in system)
    kept: list[ChatMessage] = []
    for message in reversed(rest):
        cost = estimate_tokens(message)
        if kept and cost > room:
            break
        kept.append(message)
        room -= cost
    kept.reverse()
    while kept[1:] and kept[0].role == "tool":  # its call was dropped: a result alone
        kept.pop(0)  # is refused by every provider
    return [*system, *kept]


def chat_message(message: Message) -> ChatMessage:
    """A stored message as the model is sent it, with its tool calls or the call id it
    answers."""
    calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in message.tool_calls or ())
    return ChatMessage(message.role, message.content, calls, message.tool_call_id)


def tools_of(definitions: Sequence[dict[str, Any] | str] | None) -> tuple[Tool, ...]:
    """A conversation's function tools (OpenAI's chat format, validated when they were
    set); its MCP references (strings) are `mcp_refs`."""
    return tuple(
        Tool(
            f["name"],
            f.get("description"),
            f.get("parameters"),
            f.get("strict"),
        )
        for f in (d["function"] for d in definitions or () if not isinstance(d, str))
    )


def mcp_refs(definitions: Sequence[dict[str, Any] | str] | None) -> tuple[str, ...]:
    """A conversation's MCP servers and tools (`time`, `time.get_current_time`)."""
    return tuple(d for d in definitions or () if isinstance(d, str))

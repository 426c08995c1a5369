"""Fit a conversation into a model's context budget, dropping the oldest turns first."""

from __future__ import annotations

from collections.abc import Sequence

from symposia.providers.base import ChatMessage

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
    return [*system, *reversed(kept)]

"""What one bot sees of a run: its own turns as `assistant`, everyone else's as `user`."""

from __future__ import annotations

from symposia.domain.models import Run
from symposia.providers.base import ChatMessage


def messages_for(run: Run, bot_index: int) -> list[ChatMessage]:
    """The conversation from bot `bot_index`'s seat, opened by the topic.

    Other speakers' turns carry their name (`"Alice: ..."`) so a bot can tell who said
    what once several voices share the `user` role. Empty partial turns are skipped.
    """
    bot = run.bots[bot_index]
    messages: list[ChatMessage] = []
    if bot.system_prompt:
        messages.append(ChatMessage("system", bot.system_prompt))
    messages.append(ChatMessage("user", run.topic))
    for message in run.messages:
        if not message.content:
            continue
        if message.bot_index == bot_index:
            messages.append(ChatMessage("assistant", message.content))
        else:
            messages.append(ChatMessage("user", f"{message.author}: {message.content}"))
    return messages

"""Responses API items to the messages of a model call, and the items of an answer.

Input items are messages (`{"role", "content"}`, `type: "message"` optional, content a
string or `input_text` / `output_text` parts). The output of a stored response is its
`message` items. Anything else is refused with a 400 naming the item: clients trust what
they send to arrive.
"""

from __future__ import annotations

import uuid
from typing import Any

from symposia.errors import InvalidInputError

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
TEXT_PARTS = {"input_text", "output_text", "text"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's `input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


def to_messages(items: list[dict[str, Any]], field: str = "input") -> list[tuple[str, str]]:
    """`(role, text)` for each item, in order."""
    messages: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        if kind != "message":
            raise InvalidInputError(
                f"input items of type {kind!r} are not supported", f"{field}.{i}"
            )
        role = ROLES.get(str(item.get("role")))
        if role is None:
            raise InvalidInputError(
                "role must be one of user, assistant, system, developer", f"{field}.{i}.role"
            )
        messages.append((role, _text(item.get("content"), f"{field}.{i}.content")))
    return messages


def _text(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidInputError("content must be a string or a list of text parts", field)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidInputError(
                f"content parts of type {kind!r} are not supported", f"{field}.{j}"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidInputError("a text part needs its `text`", f"{field}.{j}.text")
        texts.append(text)
    return "".join(texts)


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """An output `message` item holding one `output_text` part."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }

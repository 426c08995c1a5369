"""JSON views of domain objects for the HTTP API."""

from __future__ import annotations

from typing import Any

from symposia.domain.models import Conversation


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "default_model": conversation.default_model,
        "system_prompt": conversation.system_prompt,
        "panel": conversation.panel.to_dict() if conversation.panel is not None else None,
        "tools": conversation.tools,
        "message_count": conversation.message_count,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }

"""The concepts of Symposia, free of HTTP, storage and vendor details."""

from symposia.domain.events import Event, EventType
from symposia.domain.models import (
    BotConfig,
    Conversation,
    Message,
    MessageStatus,
    Role,
    Run,
    RunStatus,
    TurnUsage,
)

__all__ = [
    "BotConfig",
    "Conversation",
    "Event",
    "EventType",
    "Message",
    "MessageStatus",
    "Role",
    "Run",
    "RunStatus",
    "TurnUsage",
]

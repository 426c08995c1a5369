"""Event logs: where turns append events and subscribers read them.

`RedisEventLog` is imported on first use: a server without Redis never loads its client.
"""

from typing import Any

from symposia.events.log import (
    EventLog,
    EventLogUnreachableError,
    ResumeGoneError,
    StreamNotFoundError,
)
from symposia.events.memory import InMemoryEventLog


def __getattr__(name: str) -> Any:
    if name == "RedisEventLog":
        from symposia.events.redis import RedisEventLog

        return RedisEventLog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EventLog",
    "EventLogUnreachableError",
    "InMemoryEventLog",
    "RedisEventLog",
    "ResumeGoneError",
    "StreamNotFoundError",
]

"""Event logs: where turns append events and subscribers read them."""

from symposia.events.log import EventLog, ResumeGoneError, StreamNotFoundError
from symposia.events.memory import InMemoryEventLog
from symposia.events.redis import EventLogUnreachableError, RedisEventLog

__all__ = [
    "EventLog",
    "EventLogUnreachableError",
    "InMemoryEventLog",
    "RedisEventLog",
    "ResumeGoneError",
    "StreamNotFoundError",
]

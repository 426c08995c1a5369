"""Event logs: where turns append events and subscribers read them."""

from symposia.events.log import EventLog, ResumeGoneError, StreamNotFoundError
from symposia.events.memory import InMemoryEventLog

__all__ = ["EventLog", "InMemoryEventLog", "ResumeGoneError", "StreamNotFoundError"]

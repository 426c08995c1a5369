"""Which event log this server uses: this process's memory, or Redis Streams shared by all."""

from __future__ import annotations

from typing import Protocol

from symposia.events.log import EventLog
from symposia.events.memory import InMemoryEventLog
from symposia.settings import Settings


class ManagedEventLog(EventLog, Protocol):
    """An event log with the lifecycle the container drives: checked at start, closed at end."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def build_event_log(settings: Settings) -> ManagedEventLog:
    if settings.event_log_on_redis:
        assert settings.redis_url is not None  # the settings refuse EVENT_LOG=redis without it
        from symposia.events.redis import RedisEventLog  # its client loaded only when chosen

        return RedisEventLog(
            settings.redis_url,
            settings.event_log_max_events,
            settings.event_log_retention_seconds,
            connect_timeout=settings.redis_connect_timeout_seconds,
            command_timeout=settings.redis_timeout_seconds,
        )
    return InMemoryEventLog(settings.event_log_max_events, settings.event_log_retention_seconds)

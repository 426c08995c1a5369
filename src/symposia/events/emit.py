"""Writing a typed event to a stream: the one way producers append to the event log.

It lives with the log rather than with the event types: building a payload is the domain's
business, appending it is I/O."""

from __future__ import annotations

from symposia.domain.event_types import Payload
from symposia.domain.events import Event
from symposia.events.log import Appender


async def emit(log: Appender, stream_id: str, payload: Payload, epoch: int | None = None) -> Event:
    """Append `payload` to `stream_id`. A run's owner passes its lease `epoch`, so the log
    refuses it once another process took the run."""
    return await log.append(stream_id, payload.type, payload.data(), epoch)

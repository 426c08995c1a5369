"""Replies whose process died are ended, not left hanging, and never generated again.

The same idea as the runs' leases (`services/heartbeat.py` drives both), with their settings: every
`RUN_HEARTBEAT_SECONDS` this process renews the heartbeat of the replies it generates
(and stops those it no longer holds: deleted, or taken over), then looks for running
replies whose heartbeat is older than `RUN_LEASE_SECONDS`. It takes each over at a new
epoch, which fences its old writer out of the database and the event log, and ends its
stream: the text the log has is kept as a `partial` message, then `turn_complete`, an
`error` (`reply_interrupted`) and `done` (`interrupted`). A reply is not generated again:
that would bill the model call twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from symposia.domain.event_read import payload_of
from symposia.domain.event_types import (
    Payload,
    Reply,
    ReplyDone,
    StreamError,
    Token,
    TurnComplete,
    TurnStart,
    emit,
)
from symposia.domain.events import Event
from symposia.domain.models import (
    Message,
    MessageStatus,
    ReplyRecord,
    ReplyStatus,
    TurnUsage,
    utcnow,
)
from symposia.events.log import EventLog
from symposia.orchestration.generation import CHARS_PER_TOKEN_ESTIMATE
from symposia.services.replies import ReplyTasks
from symposia.storage.failures import summary
from symposia.storage.sql_replies import SqlReplyRepository

logger = logging.getLogger(__name__)

INTERRUPTED = {
    "code": "reply_interrupted",
    "message": "the server generating this reply stopped before it was finished; "
    "the text it had written is kept as a partial message",
}


@dataclass(slots=True)
class ReplyLeases:
    """The replies' side of the heartbeat (`Heartbeat` drives it: `renew`, then `sweep`)."""

    tasks: ReplyTasks
    repo: SqlReplyRepository
    log: EventLog
    stale_after: float

    async def renew(self) -> int:
        """Renew this process's replies; stop those it no longer holds."""
        live = self.tasks.live()
        held = await self.repo.renew(live)
        self.tasks.lost(reply_id for reply_id in live if reply_id not in held)
        return len(held)

    async def sweep(self) -> int:
        """End every reply whose heartbeat is stale; how many this process ended."""
        ended = 0
        for stale in await self.repo.stale(self.stale_after):
            reply = await self.repo.take_over(stale.id, self.stale_after)
            if reply is None:
                continue  # renewed meanwhile, or another process took it
            try:
                await end_interrupted(self.log, self.repo, reply)
                ended += 1
            except Exception as exc:  # it goes stale again and is retried
                logger.error("could not end interrupted reply %s: %s", reply.id, summary(exc))
        if ended:
            logger.warning("ended %d replies whose server stopped", ended)
        return ended


async def end_interrupted(log: EventLog, repo: SqlReplyRepository, reply: ReplyRecord) -> None:
    """End the stream of `reply`, taken over from a dead writer (see the module docstring).

    Without its stream (an in-memory log that died with its process) only the record
    ends; a stream rebuilt from storage then numbers its end after what it knows."""
    stream_id = reply.stream_id
    if not await log.exists(stream_id):
        await repo.finish(reply, ReplyStatus.INTERRUPTED, error=INTERRUPTED)
        return
    await log.fence(stream_id, reply.epoch)  # the old writer can append nothing more
    events = await log.read(stream_id)
    done = _last(events, ReplyDone)
    if done is not None:  # its writer ended the stream, but could not record that
        failure = _last(events, StreamError)
        await repo.finish(
            reply,
            ReplyStatus(done[1].outcome),
            error=failure[1].failure if failure is not None else None,
            error_event=failure[0] if failure is not None else None,
            done_event=done[0],
        )
        await log.close(stream_id)
        return
    speaker = Reply(reply.conversation_id, reply.id, reply.author)
    payloads: list[Payload] = [] if events else [TurnStart(speaker, reply.model)]
    message = None
    if not any(e.type == "turn_complete" for e in events):
        message = _partial(reply, events, complete_event=_next(events) + len(payloads))
        payloads.append(TurnComplete(speaker, message, saved=bool(message.content)))
    saved = message if message is not None and message.content else None
    error_event = _next(events) + len(payloads)
    payloads += [
        StreamError(INTERRUPTED),
        ReplyDone(reply.conversation_id, "interrupted", saved.id if saved else None),
    ]
    await repo.finish(
        reply,
        ReplyStatus.INTERRUPTED,
        message=saved,
        error=INTERRUPTED,
        error_event=error_event,
        done_event=error_event + 1,
    )
    for payload in payloads:
        await emit(log, stream_id, payload, reply.epoch)
    await log.close(stream_id)


_P = TypeVar("_P", ReplyDone, StreamError)


def _last(events: list[Event], kind: type[_P]) -> tuple[int, _P] | None:
    """The id and payload of the last event of type `kind`."""
    for item in reversed(events):
        payload = payload_of(item)
        if isinstance(payload, kind):
            return item.seq, payload
    return None


def _next(events: list[Event]) -> int:
    return events[-1].seq + 1 if events else 1


def _partial(reply: ReplyRecord, events: list[Event], complete_event: int) -> Message:
    """The text the stream's tokens carried, as the reply's partial message."""
    text = "".join(p.delta for p in map(payload_of, events) if isinstance(p, Token))
    start = next((e.seq for e in events if e.type == "turn_start"), 1)
    return Message(
        role="assistant",
        author=reply.author,
        content=text,
        model=reply.model,
        routing=reply.routing,
        status=MessageStatus.PARTIAL,
        usage=TurnUsage(completion_tokens=len(text) // CHARS_PER_TOKEN_ESTIMATE, estimated=True),
        completed_at=utcnow(),
        start_event=start,
        complete_event=complete_event,
    )

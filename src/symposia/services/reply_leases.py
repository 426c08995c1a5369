"""Replies whose process died are ended, not left hanging, and never generated again.

The same idea as the runs' leases (`services/heartbeat.py` drives both), with their settings: every
`RUN_HEARTBEAT_SECONDS` this process renews the heartbeat of the replies it generates
(and stops those it no longer holds: deleted, or taken over), then looks for running
replies whose heartbeat is older than `RUN_LEASE_SECONDS`. It takes each over at a new
epoch, which fences its old writer out of the database and the event log, and ends its
stream: the text the log has is kept as a `partial` message, then `turn_complete`, an
`error` (`reply_interrupted`) and `done` (`interrupted`), and a tool call of it still
waiting for approval is denied. A reply is not generated again: that would bill the model
call twice. Except where its writer was cut while a call waited for approval: then the call
is waited on, and the reply goes on from there (`ReplyTasks.resume`, `cut_replies`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from symposia.domain.event_read import payload_of
from symposia.domain.event_types import Reply, ReplyDone, StreamError
from symposia.domain.events import Event
from symposia.domain.models import Message, ReplyRecord, ReplyStatus
from symposia.events.emit import emit
from symposia.events.log import EventLog
from symposia.orchestration.cut_turns import CutTurn, close_cut_turn, surviving_text
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
                if await self.tasks.resume(reply):
                    continue
                await end_interrupted(self.log, self.repo, reply)
                await self.tasks.expire_calls(reply.conversation_id, "reply_interrupted")
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
    saved_id = None
    if any(e.type == "turn_complete" for e in events):  # cut after its turn, before `done`
        error_event = await log.last_seq(stream_id) + 1
        await repo.finish(
            reply,
            ReplyStatus.INTERRUPTED,
            error=INTERRUPTED,
            error_event=error_event,
            done_event=error_event + 1,
        )
    else:
        start = next((e.seq for e in events if e.type == "turn_start"), None)

        async def save(message: Message) -> None:
            """The record ends with its message (if it has text) and the ids of the end."""
            assert message.complete_event is not None
            await repo.finish(
                reply,
                ReplyStatus.INTERRUPTED,
                message=message if message.content else None,
                error=INTERRUPTED,
                error_event=message.complete_event + 1,
                done_event=message.complete_event + 2,
            )

        message = await close_cut_turn(
            log,
            stream_id,
            CutTurn(speaker, reply.model, start),
            surviving_text(events, speaker),
            reply.epoch,
            save,
            keep_empty=False,
            routing=reply.routing,
        )
        saved_id = message.id if message.content else None
    await emit(log, stream_id, StreamError(INTERRUPTED), reply.epoch)
    await emit(
        log, stream_id, ReplyDone(reply.conversation_id, "interrupted", saved_id), reply.epoch
    )
    await log.close(stream_id)


_P = TypeVar("_P", ReplyDone, StreamError)


def _last(events: list[Event], kind: type[_P]) -> tuple[int, _P] | None:
    """The id and payload of the last event of type `kind`."""
    for item in reversed(events):
        payload = payload_of(item)
        if isinstance(payload, kind):
            return item.seq, payload
    return None

"""Rebuild a conversation reply's event stream from storage, numbered as it was live.

As for a run (`replay`): a reply's `turn_start` is id 1 (id 2 after a panel's `routing`,
which the reply record keeps), its saved message knows the id of its `turn_complete`, and
the reply the ids of its `error` (if it showed one) and of its `done`. Its `tool_call`
events sit right before its `turn_complete`. The tokens in between come back as one
`snapshot` carrying the whole text, numbered with the last id it replaces; any other id
storage cannot rebuild (a `turn_complete` with nothing saved) is covered by an empty
`snapshot`. What storage cannot place (the end of a reply whose process died with its
in-memory log) is numbered after the last id it knows.
"""

from __future__ import annotations

from typing import cast

from symposia.domain.event_types import (
    Payload,
    Reply,
    ReplyDone,
    ReplyOutcome,
    Routed,
    Snapshot,
    StreamError,
    Token,
    ToolCalled,
    TurnComplete,
    TurnStart,
    event,
)
from symposia.domain.models import ReplyRecord, ReplyStatus
from symposia.events.replay import StoredStream, cover_gaps

FIRST_ID = 1  # a reply's first event: its `routing` in a panel, else its `turn_start`


def rebuild_reply(reply: ReplyRecord) -> StoredStream:
    """The reply's stream as storage knows it (see the module docstring)."""
    speaker = Reply(reply.conversation_id, reply.id, reply.author)
    known: dict[int, Payload] = {}
    if reply.routing is not None:
        known[FIRST_ID] = Routed(reply.routing)
    start = len(known) + FIRST_ID
    known[start] = TurnStart(speaker, reply.model)
    unplaced: list[Payload] = []
    message = reply.message
    placed_text = False
    if message is not None:
        complete = TurnComplete(speaker, message)
        calls = [
            ToolCalled(speaker, c["id"], c["name"], c["arguments"])
            for c in message.tool_calls or ()
        ]
        if message.complete_event is not None and message.complete_event > start + len(calls):
            known[message.complete_event] = complete
            for i, call in enumerate(calls):  # sent right before `turn_complete`
                known[message.complete_event - len(calls) + i] = call
            placed_text = True
        else:
            unplaced += [Token(speaker.token_fields(), message.content), *calls, complete]
    if reply.error is not None:
        if reply.error_event is not None and reply.error_event not in known:
            known[reply.error_event] = StreamError(reply.error)
        else:
            unplaced.append(StreamError(reply.error))
    if reply.status is not ReplyStatus.RUNNING:
        outcome = cast(ReplyOutcome, reply.status.value)
        done = ReplyDone(reply.conversation_id, outcome, message.id if message else None)
        if not unplaced and reply.done_event is not None and reply.done_event > max(known):
            known[reply.done_event] = done
        else:
            unplaced.append(done)
    if placed_text and message is not None:
        tokens_end = min(seq for seq in known if seq > start) - 1
        if tokens_end > start:  # its tokens, compacted
            known[tokens_end] = Snapshot(start + 1, (message,))
    cover_gaps(known)
    events = [event(seq, known[seq]) for seq in sorted(known)]
    after = events[-1].seq
    events.extend(event(after + 1 + i, payload) for i, payload in enumerate(unplaced))
    return StoredStream(tuple(events))

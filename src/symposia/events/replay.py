"""Rebuild a run's event stream from storage, numbered as it was live.

The live log is kept only for a while (and only in memory by default); after that, or
after a restart, a client can still read the run, and `Last-Event-ID` must mean what it
meant live. Each stored message knows the ids of its `turn_start` and `turn_complete`
and the run the id of its `done`, so those events (and the run's statuses around them)
come back with their own ids. The tokens between a turn's start and end are not stored:
one `snapshot` stands for them, numbered with the last id it replaces and carrying the
turn's whole text. Any other id that can no longer be rebuilt (a turn that said nothing,
so saved no message) is covered by a `snapshot` too, never renumbered.

What storage cannot place (a run stored before event ids were, or one whose process died
before its end) is numbered after the last id it knows, as it always was.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from symposia.domain.event_types import (
    BotTurn,
    BotUpdated,
    Payload,
    PersonSaid,
    RunDone,
    RunStatusChanged,
    Snapshot,
    StreamError,
    Token,
    TurnComplete,
    TurnStart,
    event,
)
from symposia.domain.events import Event
from symposia.domain.models import Message, Run, RunStatus
from symposia.events.log import BATCH_EVENTS

FIRST_ID = 1  # a run's first event is its `running` status


@dataclass(frozen=True, slots=True)
class StoredStream:
    """A finished (or no longer followed) stream, rebuilt: read like a log's `batches`."""

    events: tuple[Event, ...]
    _seqs: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_seqs", [e.seq for e in self.events])

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].type == "done"

    async def batches(
        self, stream_id: str, after_seq: int = 0, limit: int = BATCH_EVENTS
    ) -> AsyncIterator[Sequence[Event]]:
        """The events after `after_seq`, a bounded batch at a time with a turn for the
        others between batches, as the live log does."""
        start = bisect.bisect_right(self._seqs, after_seq)
        for index in range(start, len(self.events), limit):
            if index > start:
                await asyncio.sleep(0)
            yield self.events[index : index + limit]


def _turn(message: Message) -> tuple[BotTurn, TurnStart, TurnComplete]:
    speaker = BotTurn(message.turn or 0, message.bot_index or 0, message.author, message.round)
    return speaker, TurnStart(speaker, message.model), TurnComplete(speaker, message)


def _ending(run: Run) -> list[Payload]:
    """The events that closed a finished run's stream: error (if any), status, done."""
    ending: list[Payload] = []
    if run.status is RunStatus.ERROR:
        ending.append(
            StreamError(run.error) if run.error else StreamError.internal(run.error_message or "")
        )
    ending.append(
        RunStatusChanged(
            run.status, reason=run.stop_reason, error=run.error_message, ended_by=run.ended_by
        )
    )
    ending.append(RunDone(run.status, run.ended_by))
    return ending


def cover_gaps(known: dict[int, Payload]) -> None:
    """Every id up to the last known one stands for something: a gap becomes a snapshot
    with no text, numbered with the gap's last id."""
    covered = 0
    for seq in sorted(known):
        payload = known[seq]
        first = payload.first_id if isinstance(payload, Snapshot) else seq
        if first > covered + 1:
            known[first - 1] = Snapshot(covered + 1)
        covered = seq


def rebuild(run: Run) -> StoredStream:
    """The run's stream as storage knows it (see the module docstring)."""
    known: dict[int, Payload] = {FIRST_ID: RunStatusChanged(RunStatus.RUNNING)}
    unplaced: list[Payload] = []
    for change in run.edits:
        if change.event is not None and change.turn is not None:
            name = run.bots[change.bot].name
            known[change.event] = BotUpdated(change.bot, name, change.changes, change.turn)
    for message in run.messages:
        if message.role == "user":  # a person: spoke in, or took their turn
            if message.start_event is not None:
                known[message.start_event] = PersonSaid(message)
            continue
        if message.bot_index is None:
            continue
        if run.parent_id is not None and message.start_event is None:
            continue  # inherited by a branch: its stream carries only its own turns
        speaker, start, complete = _turn(message)
        first, last = message.start_event, message.complete_event
        if first is not None and last is not None and first < last:
            known[first], known[last] = start, complete
            if last - first > 1:  # its tokens, compacted
                known[last - 1] = Snapshot(first + 1, (message,))
        else:
            unplaced.append(start)
            if message.content:
                unplaced.append(Token(speaker.token_fields(), message.content))
            unplaced.append(complete)
    if run.status.finished:
        ending = _ending(run)
        done = run.done_event
        if done is not None and done - len(ending) >= max(known):
            for offset, payload in enumerate(reversed(ending)):
                known[done - offset] = payload
        else:
            unplaced.extend(ending)
    cover_gaps(known)
    events = [event(seq, known[seq]) for seq in sorted(known)]
    after = events[-1].seq
    events.extend(event(after + 1 + i, payload) for i, payload in enumerate(unplaced))
    return StoredStream(tuple(events))


def resumable(run: Run, turn_events_max: int) -> list[Event]:
    """The stream of an unfinished run whose live log is gone (it was in the memory of a
    process that stopped), rebuilt to go on from: what storage knows, then one `snapshot`
    standing for every id the lost log may have used after that, so the events appended
    next never reuse an id a client saw. Those are the ids up to the departing owner's last
    event when it recorded one (a handover), and those a turn cut under way may have used
    (its `turn_start`, at most `turn_events_max` more) when the process died mid-turn."""
    events = list(rebuild(run).events)
    last = events[-1].seq
    high = max(last, run.last_event or 0)
    closed = max((m.complete_event or 0 for m in run.messages), default=0)
    if run.open_turn_event is not None and run.open_turn_event > closed:
        high = max(high, run.open_turn_event + turn_events_max)
    if high > last:
        events.append(event(high, Snapshot(last + 1)))
    return events

"""Rebuild a leased stream (a run's, or a conversation reply's) from storage, by coverage.

The live log is kept only for a while (and only in memory by default); after that, or
after a restart, a client can still read the stream, and `Last-Event-ID` must mean what it
meant live. So the rebuild keeps every event storage can place at its original id, with
its original data: a turn's `turn_start` and `turn_complete`, a person's message, a bot
edit, a stored decision (verdict, selector choice) that records its `event_id`, a reply's
`routing`, `tool_call` and `error`, the run's statuses and `done`. Every other id up to
the last is covered by a `snapshot`: one per run of consecutive ids no longer kept,
numbered with the last of them and naming them (`ranges`), carrying the whole text of the
turns under way there (the tokens it replaces), so
- every id up to the last is covered exactly once, by its own event or by one snapshot;
- no snapshot stands for an id another event holds, and each stands only for ids at or
  below its own, so the events after any id are exactly what a client resuming there
  still needs, whichever ids the turns of a round interleaved on.

What storage cannot place (a run stored before event ids were, a reply whose process died
with its in-memory log) is numbered after the last id it knows, as it always was.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from symposia.domain.event_read import MalformedEventError, payload_of
from symposia.domain.event_types import (
    HANDOVER,
    ApprovalAwaited,
    BotTurn,
    BotUpdated,
    Interrupted,
    Payload,
    PersonSaid,
    Reply,
    ReplyDone,
    ReplyOutcome,
    Routed,
    RunDone,
    RunStatusChanged,
    Snapshot,
    StreamError,
    Token,
    ToolCalled,
    ToolResulted,
    TurnComplete,
    TurnStart,
    event,
)
from symposia.domain.events import Event, EventType
from symposia.domain.models import (
    Message,
    ReplyRecord,
    ReplyStatus,
    Run,
    RunStatus,
    TurnRecord,
)
from symposia.events.log import BATCH_EVENTS

FIRST_ID = 1  # a run's first event is its `running` status; a reply's, its first event


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


@dataclass(slots=True)
class _Placement:
    """What storage knows of a stream: events at their ids, the turns whose tokens are gone
    (`turn_start` id, `turn_complete` id, message), and what it cannot place."""

    known: dict[int, Payload] = field(default_factory=dict)
    turns: list[tuple[int, int, Message]] = field(default_factory=list)
    unplaced: list[Payload] = field(default_factory=list)

    def free(self, *seqs: int | None) -> bool:
        return all(seq is not None and seq >= FIRST_ID and seq not in self.known for seq in seqs)

    def place(self, seq: int | None, payload: Payload) -> None:
        """`payload` at `seq`, or after everything when storage has no free id for it."""
        if seq is not None and self.free(seq):
            self.known[seq] = payload
        else:
            self.unplaced.append(payload)

    def last(self) -> int:
        return max(self.known, default=0)

    def stream(self) -> StoredStream:
        """The placed events, each run of missing ids covered by one snapshot, then what
        could not be placed, numbered on."""
        placed: dict[int, Payload] = dict(self.known)
        covered = 0
        carried: set[str] = set()  # a turn cut by tool events: its text in one snapshot
        for seq in sorted(self.known):
            if seq > covered + 1:
                first, last = covered + 1, seq - 1
                texts = tuple(
                    m
                    for start, end, m in self.turns
                    if start < first and last < end and m.id not in carried
                )
                carried.update(m.id for m in texts if m.tool_steps)
                placed[last] = Snapshot(((first, last),), texts)
            covered = seq
        events = [event(seq, placed[seq]) for seq in sorted(placed)]
        after = events[-1].seq if events else 0
        events.extend(event(after + 1 + i, payload) for i, payload in enumerate(self.unplaced))
        return StoredStream(tuple(events))


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


# The fields that tell a stored decision's event: a verdict, or a selector's choice.
# Where a policy stores the id of its verdict's event, beside the verdict.
VERDICT_EVENT = "verdict_event_id"
_DECISIONS: tuple[tuple[EventType, frozenset[str]], ...] = (
    ("verdict", frozenset({"method", "answer", "votes", "reason"})),
    ("speaker_selected", frozenset({"bot", "name", "answer", "attempts", "fallback"})),
)


def _decision(item: Any) -> tuple[int, Payload] | None:
    """A stored decision that records `event_id`, as the event that announced it."""
    if not isinstance(item, dict):
        return None
    seq = item.get("event_id")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    for kind, fields in _DECISIONS:
        if fields <= item.keys():
            try:
                return seq, payload_of(Event(seq, kind, item))
            except MalformedEventError:
                return None
    return None


def decisions(run: Run) -> list[tuple[int, Payload]]:
    """The decisions the run's policy stored with the id of the event that announced them
    (its `verdict`, whose id is `VERDICT_EVENT` beside it; each selector choice in
    `choices`, and any decision holding its own `event_id`, wherever in its state), as
    those events, with the data they had."""
    state = run.policy_state
    found: list[tuple[int, Payload]] = []
    verdict, at = state.get("verdict"), state.get(VERDICT_EVENT)
    if isinstance(verdict, dict) and (decision := _decision({**verdict, "event_id": at})):
        found.append(decision)
    for value in state.values():
        for item in value if isinstance(value, list) else [value]:
            if (decision := _decision(item)) is not None:
                found.append(decision)
    return found


def _place_turn(stream: _Placement, message: Message) -> None:
    speaker = BotTurn(message.turn or 0, message.bot_index or 0, message.author, message.round)
    start, complete = TurnStart(speaker, message.model), TurnComplete(speaker, message)
    first, last = message.start_event, message.complete_event
    if first is not None and last is not None and first < last and stream.free(first, last):
        stream.known[first], stream.known[last] = start, complete
        stream.turns.append((first, last, message))
        for seq, payload in tool_events(speaker, message):
            stream.place(seq, payload)
        return
    stream.unplaced.append(start)
    if message.content:
        stream.unplaced.append(Token(speaker.token_fields(), message.content))
    stream.unplaced.append(complete)


def tool_events(speaker: BotTurn | Reply, message: Message) -> list[tuple[int | None, Payload]]:
    """The `tool_call` and `tool_result` of each MCP tool call the turn ran, at their ids."""
    events: list[tuple[int | None, Payload]] = []
    for step in message.tool_steps or ():
        called = ToolCalled(
            speaker,
            step["id"],
            step.get("function", ""),
            step["arguments"],
            step["server"],
            step["tool"],
        )
        result = ToolResulted(
            speaker, step["id"], step["content"], bool(step["is_error"]), step["duration_ms"]
        )
        events.append((step.get("call_event"), called))
        if step.get("approval_event") is not None:
            asked = {k: step[k] for k in ("id", "server", "tool", "arguments")}
            until = datetime.fromisoformat(step["approval_until"])
            events.append((step["approval_event"], ApprovalAwaited(speaker, asked, until)))
        events.append((step.get("result_event"), result))
    return events


def rebuild(run: Run) -> StoredStream:
    """The run's stream as storage knows it (see the module docstring)."""
    return _placement(run).stream()


def _placement(run: Run) -> _Placement:
    stream = _Placement({FIRST_ID: RunStatusChanged(RunStatus.RUNNING)})
    for change in run.edits:
        if change.event is not None and change.turn is not None:
            name = run.bots[change.bot].name
            stream.place(change.event, BotUpdated(change.bot, name, change.changes, change.turn))
    for message in run.messages:
        if message.role == "user":  # a person: spoke in, or took their turn
            if message.start_event is not None:
                stream.place(message.start_event, PersonSaid(message))
        elif message.bot_index is None:
            continue
        elif run.parent_id is not None and message.start_event is None:
            continue  # inherited by a branch: its stream carries only its own turns
        else:
            _place_turn(stream, message)
    for seq, payload in decisions(run):
        stream.place(seq, payload)
    if run.status.finished:
        ending = _ending(run)
        done = run.done_event
        first = None if done is None else done - len(ending) + 1
        if first is not None and first > stream.last() and not stream.unplaced:
            for offset, payload in enumerate(ending):
                stream.known[first + offset] = payload
        else:
            stream.unplaced.extend(ending)
    return stream


def resumable(run: Run, turn_events_max: int, open_turns: Sequence[TurnRecord] = ()) -> list[Event]:
    """The stream of an unfinished run whose live log is gone (it was in the memory of a
    process that stopped), rebuilt to go on from: what storage knows, then one `snapshot`
    standing for every id the lost log may have used after that, so the events appended
    next never reuse an id a client saw. Those are the ids up to the departing owner's last
    event when it recorded one (a handover), and those a turn cut under way may have used
    (its `turn_start`, at most `turn_events_max` more) when the process died mid-turn.

    What storage knows of those lost ids keeps its id: the `turn_start` of each turn still
    open (`open_turns`, the turn records), and the departing owner's `interrupted` at the
    id it recorded, when nothing was stored after it."""
    stream = _placement(run)
    for record in open_turns:
        if record.start_event is not None and stream.free(record.start_event):
            name = run.bots[record.bot].name
            speaker = BotTurn(record.turn, record.bot, name, record.round)
            stream.known[record.start_event] = TurnStart(speaker, record.model)
    handed_over_at = run.last_event
    if handed_over_at is not None and handed_over_at > stream.last():
        stream.known[handed_over_at] = Interrupted(HANDOVER, run.turn_count)
    events = list(stream.stream().events)
    last = events[-1].seq
    high = max(last, run.last_event or 0)
    closed = max((m.complete_event or 0 for m in run.messages), default=0)
    opened = [r.start_event for r in open_turns if r.start_event is not None]
    if run.open_turn_event is not None:
        opened.append(run.open_turn_event)
    if opened and max(opened) > closed:
        high = max(high, max(opened) + turn_events_max)
    if high > last:
        events.append(event(high, Snapshot(((last + 1, high),))))
    return events


def rebuild_reply(reply: ReplyRecord) -> StoredStream:
    """A conversation reply's stream as storage knows it: its `routing` (a panel's) at id 1,
    its `turn_start` next, its `tool_call` events right before its `turn_complete` (whose
    id the saved message knows), its `error` and `done` at the ids the reply recorded."""
    speaker = Reply(reply.conversation_id, reply.id, reply.author)
    stream = _Placement()
    if reply.routing is not None:
        stream.known[FIRST_ID] = Routed(reply.routing)
    start = stream.last() + 1
    stream.known[start] = TurnStart(speaker, reply.model)
    message = reply.message
    if message is not None:
        complete = TurnComplete(speaker, message)
        calls = [
            ToolCalled(speaker, c["id"], c["name"], c["arguments"])
            for c in message.tool_calls or ()
        ]
        end = message.complete_event
        if end is not None and end > start + len(calls) and stream.free(end):
            stream.known[end] = complete
            for i, call in enumerate(calls):  # sent right before `turn_complete`
                stream.known[end - len(calls) + i] = call
            stream.turns.append((start, end, message))
            for seq, payload in tool_events(speaker, message):
                stream.place(seq, payload)
        else:
            ran = [payload for _, payload in tool_events(speaker, message)]
            stream.unplaced += [
                Token(speaker.token_fields(), message.content),
                *ran,
                *calls,
                complete,
            ]
    if reply.error is not None:
        stream.place(reply.error_event, StreamError(reply.error))
    if reply.status is not ReplyStatus.RUNNING:
        outcome = cast(ReplyOutcome, reply.status.value)
        done = ReplyDone(reply.conversation_id, outcome, message.id if message else None)
        if not stream.unplaced and reply.done_event is not None:
            stream.place(reply.done_event if reply.done_event > stream.last() else None, done)
        else:
            stream.unplaced.append(done)
    return stream.stream()

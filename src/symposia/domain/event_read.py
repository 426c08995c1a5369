"""Events typed on read as they are on write: `payload_of(event)` is the payload of the
union (`event_types`) whose `data()` is the event's data, so a reader asks for fields by
name and type instead of picking a dict apart by key.

Each type has one reader here, the inverse of its `data()`. What the wire does not carry
is filled in plainly: a message read back from a `turn_complete` or a `snapshot` has the
id, text and speaker the event names, and a reply's `tool_call` names its speaker only by
`name` (as its data does). An event whose data does not fit its type raises
`MalformedEventError` (a bug, or a stream written by another program).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from symposia.domain.event_types import (
    ApprovalAwaited,
    AwaitingInput,
    BotTurn,
    BotUpdated,
    IdRanges,
    Interrupted,
    Payload,
    PersonSaid,
    Reply,
    ReplyDone,
    ReplyOutcome,
    Resumed,
    Routed,
    RunDone,
    RunStatusChanged,
    Snapshot,
    Speaker,
    SpeakerSelected,
    StreamError,
    Token,
    ToolCalled,
    ToolResulted,
    TurnComplete,
    TurnStart,
    Verdict,
)
from symposia.domain.events import Event
from symposia.domain.models import Message, MessageStatus, RunStatus, TurnUsage, new_id
from symposia.errors import SymposiaError


class MalformedEventError(SymposiaError):
    """An event's data is not what its type says."""

    code = "malformed_event"


def _speaker(data: dict[str, Any]) -> Speaker:
    if "conversation_id" in data:
        return Reply(data["conversation_id"], data["in_reply_to"], data["name"])
    if "turn" in data:
        return BotTurn(int(data["turn"]), int(data["bot"]), str(data["name"]), data.get("round"))
    return Reply("", "", str(data.get("name", "assistant")))  # a reply's token fields


def _turn_complete(event: Event) -> TurnComplete:
    data = event.data
    message_id = data.get("message_id")
    usage = data.get("usage")
    speaker = _speaker(data)
    message = Message(
        role="assistant",
        author=str(data["name"]),
        content=str(data["content"]),
        model=data.get("model"),
        status=MessageStatus(data["status"]),
        bot_index=speaker.bot if isinstance(speaker, BotTurn) else None,
        turn=speaker.turn if isinstance(speaker, BotTurn) else None,
        round=speaker.round if isinstance(speaker, BotTurn) else None,
        usage=TurnUsage(**usage) if usage else None,
        id=message_id or new_id(),
        complete_event=event.seq if message_id else None,
        tool_calls=data.get("tool_calls"),
        finish_reason=data.get("finish_reason"),
    )
    return TurnComplete(speaker, message, saved=message_id is not None)


def ranges_of(event: Event) -> IdRanges:
    """The ids `event` stands for: its own, or a snapshot's set (a snapshot written before
    snapshots carried `ranges` stands for `first_id` to its own id)."""
    if event.type != "snapshot":
        return ((event.seq, event.seq),)
    ranges = event.data.get("ranges")
    if ranges is None:
        return ((int(event.data.get("first_id", event.seq)), event.seq),)
    return tuple((int(first), int(last)) for first, last in ranges)


def _snapshot(event: Event) -> Snapshot:
    messages = tuple(
        Message(
            role="assistant",
            author=str(m["name"]),
            content=str(m["content"]),
            bot_index=m.get("bot"),
            turn=m.get("turn"),
            id=m.get("message_id") or new_id(),
        )
        for m in event.data.get("messages", ())
    )
    return Snapshot(ranges_of(event), messages)


def _done(event: Event) -> RunDone | ReplyDone:
    data = event.data
    if "conversation_id" in data:
        outcome = cast(ReplyOutcome, data["status"])
        return ReplyDone(data["conversation_id"], outcome, data.get("message_id"))
    return RunDone(RunStatus(data["status"]), data.get("ended_by"))


def _person(event: Event) -> PersonSaid:
    data = event.data
    message = Message(
        role="user",
        author=str(data["author"]),
        content=str(data["content"]),
        turn=data.get("turn"),
        id=data["message_id"],
        start_event=event.seq,
        complete_event=event.seq,
    )
    return PersonSaid(message)


def _token(event: Event) -> Token:
    fields = {k: v for k, v in event.data.items() if k != "delta"}
    return Token(fields, str(event.data["delta"]))


_P = TypeVar("_P")


def _fields(build: Callable[..., _P], *names: str) -> Callable[[Event], _P]:
    """A reader for a payload built from these fields of the data, by name."""
    return lambda event: build(*(event.data[name] for name in names))


_READERS: dict[str, Callable[[Event], Payload]] = {
    "run_status": lambda e: RunStatusChanged(
        RunStatus(e.data["status"]),
        e.data.get("reason"),
        e.data.get("error"),
        e.data.get("ended_by"),
    ),
    "turn_start": lambda e: TurnStart(_speaker(e.data), e.data.get("model")),
    "token": _token,
    "tool_call": lambda e: ToolCalled(
        _speaker(e.data),
        e.data["id"],
        e.data["function"],
        e.data["arguments"],
        e.data.get("server"),
        e.data.get("tool"),
    ),
    "tool_result": lambda e: ToolResulted(
        _speaker(e.data),
        e.data["id"],
        e.data["content"],
        bool(e.data["is_error"]),
        float(e.data["duration_ms"]),
    ),
    "turn_complete": _turn_complete,
    "error": lambda e: StreamError(dict(e.data)),
    "done": _done,
    "person_message": _person,
    "bot_updated": _fields(BotUpdated, "bot", "name", "changes", "turn"),
    "speaker_selected": _fields(SpeakerSelected, "bot", "name", "answer", "attempts", "fallback"),
    "routing": lambda e: Routed(dict(e.data)),
    "awaiting_input": lambda e: (
        ApprovalAwaited(
            _speaker(e.data), dict(e.data["call"]), datetime.fromisoformat(e.data["until"])
        )
        if "call" in e.data
        else AwaitingInput(e.data["bot"], e.data["name"], datetime.fromisoformat(e.data["until"]))
    ),
    "verdict": _fields(Verdict, "method", "answer", "votes", "reason", "winner"),
    "interrupted": _fields(Interrupted, "reason", "turn"),
    "resumed": _fields(Resumed, "turn", "takeovers"),
    "snapshot": _snapshot,
}


def payload_of(event: Event) -> Payload:
    """The typed payload `event` carries (see the module docstring)."""
    try:
        return _READERS[event.type](event)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEventError(
            f"event {event.seq} is not a valid {event.type!r}: {type(exc).__name__} {exc}"
        ) from exc

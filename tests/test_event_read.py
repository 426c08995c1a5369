"""Events are typed on read as on write (issue 21): `payload_of` gives back the payload
whose data the event carries, for every type, and refuses data that does not fit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from symposia.domain.event_read import MalformedEventError, payload_of, ranges_of
from symposia.domain.event_types import (
    ApprovalAwaited,
    AwaitingInput,
    BotTurn,
    BotUpdated,
    Interrupted,
    Payload,
    PersonSaid,
    Reply,
    ReplyDone,
    Resumed,
    Routed,
    RunDone,
    RunStatusChanged,
    Snapshot,
    SpeakerSelected,
    StreamError,
    Token,
    ToolCalled,
    ToolResulted,
    TurnComplete,
    TurnStart,
    Verdict,
    event,
)
from symposia.domain.events import Event, EventType
from symposia.domain.models import Message, MessageStatus, RunStatus, TurnUsage

BOT = BotTurn(3, 1, "B", 2)
REPLY = Reply("c1", "q1", "assistant")


def _message(**fields: object) -> Message:
    message = Message(
        role="assistant",
        author="B",
        content="hello",
        model="scripted/x",
        status=MessageStatus.PARTIAL,
        bot_index=1,
        turn=3,
        round=2,
        usage=TurnUsage(4, 5, True, 10.0, 20.0),
        complete_event=9,
        tool_calls=[{"id": "t1", "name": "f", "arguments": "{}"}],
    )
    for key, value in fields.items():
        setattr(message, key, value)
    return message


SAMPLES: list[Payload] = [
    RunStatusChanged(RunStatus.ERROR, reason="r", error="e", ended_by="stop"),
    RunStatusChanged(RunStatus.RUNNING),
    TurnStart(BOT, "scripted/x"),
    TurnStart(REPLY, None),
    Token(BOT.token_fields(), "hi "),
    Token(REPLY.token_fields(), "hi "),
    ToolCalled(REPLY, "t1", "lookup", '{"q": 1}'),
    ToolCalled(BOT, "t1", "lookup", "{}"),
    ToolCalled(BOT, "t2", "time__now", "{}", "time", "now"),
    ToolResulted(BOT, "t2", "noon", False, 12.5),
    ToolResulted(REPLY, "t2", "denied", True, 0.0),
    ApprovalAwaited(
        REPLY,
        {"id": "t2", "server": "time", "tool": "now", "arguments": "{}"},
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ),
    TurnComplete(BOT, _message()),
    TurnComplete(REPLY, _message(bot_index=None, turn=None, round=None, usage=None)),
    TurnComplete(BOT, _message(tool_calls=None), saved=False),
    StreamError.internal("boom"),
    RunDone(RunStatus.COMPLETED, "max_turns"),
    ReplyDone("c1", "interrupted", None),
    PersonSaid(Message(role="user", author="Pat", content="hi", turn=4)),
    BotUpdated(0, "A", {"temperature": 0.5}, 4),
    SpeakerSelected(1, "B", "B please", 2, False),
    Routed({"agent": "math", "reason": "numbers", "attempts": 1, "fallback": False}),
    AwaitingInput(1, "Pat", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    Verdict("moderator", "yes", {}, "clear", "A"),
    Interrupted("handed over", 5),
    Resumed(5, 2),
    Snapshot(((4, 8),), (_message(),)),
    Snapshot(((2, 3), (6, 9))),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_an_event_reads_back_as_the_payload_that_wrote_it(payload: Payload) -> None:
    written = event(9, payload)
    read = payload_of(written)
    assert type(read) is type(payload)
    assert (read.type, read.data()) == (written.type, written.data)


def test_every_event_type_has_a_sample() -> None:
    assert {p.type for p in SAMPLES} == set(get_args(EventType))


def test_a_snapshot_written_before_ranges_stands_for_first_id_to_its_own() -> None:
    old = Event(12, "snapshot", {"first_id": 7, "messages": []})
    assert ranges_of(old) == ((7, 12),)
    assert ranges_of(Event(5, "token", {"delta": "x"})) == ((5, 5),)


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("run_status", {"status": "sleeping"}),
        ("turn_complete", {"name": "A", "turn": 1}),
        ("verdict", {"method": "vote"}),
        ("awaiting_input", {"bot": 1, "name": "P", "until": "tomorrow"}),
    ],
)
def test_data_that_does_not_fit_its_type_is_refused(
    type_: EventType, data: dict[str, object]
) -> None:
    with pytest.raises(MalformedEventError, match=type_):
        payload_of(Event(3, type_, data))

"""`CutReply`: what a conversation's reply cut while a call waited for approval had done,
read back from its stream, and the messages the model is sent to go on. An earlier round
keeps its answer and result; the pending call is waited on and run; a call of the cut round
that had no result (it was running when its writer died) is answered with an error, never
run again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from symposia.domain.event_types import Reply
from symposia.domain.events import Event
from symposia.domain.models import Message, TurnUsage, utcnow
from symposia.events.memory import InMemoryEventLog
from symposia.orchestration.cut_replies import CUT_OFF, CutReply
from symposia.storage.sql_approvals import PENDING, ApprovalRecord
from symposia.tools.approvals import Approvals
from symposia.tools.toolbox import PendingCall

SPEAKER = Reply("conv", "q1", "assistant")
STREAM = "reply-q1"
UNTIL = utcnow()


def _events() -> list[Event]:
    said: list[tuple[str, dict[str, Any]]] = [
        ("turn_start", {"conversation_id": "conv", "in_reply_to": "q1"}),
        ("token", {"delta": "First. "}),
        ("tool_call", {"id": "a", "function": "t__one", "arguments": "{}", "server": "t",
                       "tool": "one"}),
        ("tool_result", {"id": "a", "content": "one done", "is_error": False,
                         "duration_ms": 3.0}),
        ("token", {"delta": "Then. "}),
        ("tool_call", {"id": "b", "function": "t__two", "arguments": "{}", "server": "t",
                       "tool": "two"}),
        ("tool_call", {"id": "c", "function": "t__three", "arguments": "{}", "server": "t",
                       "tool": "three"}),
        ("awaiting_input", {"call": {"id": "b", "server": "t", "tool": "two",
                                     "arguments": "{}"}, "until": UNTIL.isoformat()}),
    ]  # fmt: skip
    return [
        Event(seq, kind, {"name": "assistant", **data})
        for seq, (kind, data) in enumerate(said, start=1)
    ]


class _Decided:
    """Approvals where call `b` is pending and is denied when waited on."""

    def __init__(self) -> None:
        self.announced: list[str] = []

    async def pending(self, subject: str) -> list[ApprovalRecord]:
        assert subject == "conversation:conv"
        return [ApprovalRecord(subject, "b", STREAM, "assistant", "t", "two", "{}", PENDING, UNTIL)]

    async def resume(
        self, record: ApprovalRecord, announce: Callable[[PendingCall, datetime], Awaitable[None]]
    ) -> bool:
        call = PendingCall(record.call_id, record.server, record.tool, record.arguments)
        await announce(call, record.until)
        self.announced.append(call.id)
        return False


async def test_a_cut_reply_is_read_back_and_goes_on_from_its_last_round() -> None:
    cut = CutReply.of(_events(), SPEAKER)
    assert cut.start_event == 1
    assert cut.text == "First. Then. "
    assert cut.tool_rounds == 2
    assert [s["id"] for s in cut.steps] == ["a", "b", "c"]
    assert cut.steps[0]["content"] == "one done"
    assert cut.steps[1]["approval_event"] == 8

    log = InMemoryEventLog()
    await log.create(STREAM)
    for event in _events():
        await log.append(STREAM, event.type, event.data)
    decided = _Decided()
    messages = await cut.go_on(
        cast(Approvals, decided), None, (), log, "conversation:conv", STREAM, 1
    )
    assert decided.announced == ["b"]  # waited on once, the same call
    assert [(m.role, m.content, m.tool_call_id) for m in messages] == [
        ("assistant", "First. ", None),
        ("tool", "one done", "a"),
        ("assistant", "Then. ", None),
        ("tool", "Error: The tool t.two is no longer offered.", "b"),
        ("tool", f"Error: {CUT_OFF}", "c"),
    ]
    assert [c.id for c in messages[2].tool_calls] == ["b", "c"]
    written = [(e.type, e.data.get("id")) for e in await log.read(STREAM)][8:]
    assert written == [("awaiting_input", None), ("tool_result", "b"), ("tool_result", "c")]
    assert cut.steps[1]["approval"] == "denied"

    message = Message(role="assistant", author="assistant", content="Done.", usage=TurnUsage())
    cut.fill(message, answered=True)
    assert message.content == "First. Then. Done."
    assert [s["id"] for s in message.tool_steps or ()] == ["a", "b", "c"]
    assert message.usage is not None
    assert message.usage.estimated

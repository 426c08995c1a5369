"""A conversation's reply cut while one of its MCP calls waited for approval (issue 27),
gone on with by the process that took the reply over.

Its stream says what the reply had done: the text of each model answer, the MCP calls
each asked, and the results of those already run. The new owner waits on the stored
pending call (`cut_calls`: announced again, the same id, the same deadline), runs it once
approved, gives a call cut off with its writer (asked, no result: it may have run) an
error result rather than running it again, and goes on with the tool loop from there: the
model is asked with the results, as the old owner would have asked it next. No answer the
model already gave is asked for again (it would be paid for twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from symposia.domain.event_types import Speaker, ToolResulted
from symposia.domain.events import Event
from symposia.domain.models import Message
from symposia.events.emit import emit
from symposia.events.log import EventLog
from symposia.orchestration.answer import estimate
from symposia.orchestration.cut_calls import resume_pending_calls
from symposia.providers.base import ChatMessage, ToolCall
from symposia.tools.approvals import Approvals
from symposia.tools.servers import ToolServers
from symposia.tools.toolbox import DENIED, ToolOutcome, tool_message_content

CUT_OFF = (
    "The server running this call stopped before it gave a result: "
    "it may or may not have run, and it was not run again."
)


@dataclass(slots=True)
class _Round:
    """One model answer of the reply: its text, the MCP calls it asked, their results."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    results: dict[str, ToolOutcome] = field(default_factory=dict)


@dataclass(slots=True)
class CutReply:
    """What the stream of a cut reply holds (`of`), and going on from it (`go_on`)."""

    speaker: Speaker
    events: list[Event]
    start_event: int | None = None
    rounds: list[_Round] = field(default_factory=lambda: [_Round()])
    # The steps of its MCP calls, in the order asked (as `Generation.steps` has them).
    steps: list[dict[str, Any]] = field(default_factory=list)
    # The client's function calls of its last answer: the client answers them.
    client_calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.rounds)

    @property
    def tool_rounds(self) -> int:
        """How many rounds of MCP calls it ran: they count toward `max_tool_steps`."""
        return sum(1 for r in self.rounds if r.calls)

    @classmethod
    def of(cls, events: Sequence[Event], speaker: Speaker) -> CutReply:
        fields = speaker.token_fields()
        mine = [e for e in events if all(e.data.get(k) == v for k, v in fields.items())]
        cut = cls(speaker, list(events))
        by_id: dict[str, dict[str, Any]] = {}
        for event in mine:
            data = event.data
            if event.type == "turn_start":
                cut.start_event = event.seq
            elif event.type in ("token", "tool_call") and cut.rounds[-1].results:
                cut.rounds.append(_Round())  # the model answered the results: a new answer
            if event.type == "token":
                cut.rounds[-1].text += str(data.get("delta", ""))
            elif event.type == "tool_call":
                cut._called(event, by_id)
            elif event.type == "awaiting_input":
                step = by_id.get(str((data.get("call") or {}).get("id")))
                if step is not None:
                    step.update(approval_event=event.seq, approval_until=data.get("until"))
            elif event.type == "tool_result" and str(data.get("id")) in by_id:
                outcome = ToolOutcome(
                    str(data.get("content", "")),
                    bool(data.get("is_error")),
                    float(data.get("duration_ms") or 0.0),
                )
                cut._answered(by_id[str(data["id"])], outcome, event.seq)
        return cut

    def _called(self, event: Event, by_id: dict[str, dict[str, Any]]) -> None:
        data = event.data
        call_id, function, arguments = str(data["id"]), str(data["function"]), data["arguments"]
        if data.get("server") is None:  # the client's function: not Symposia's to run
            self.client_calls.append({"id": call_id, "name": function, "arguments": arguments})
            return
        self.rounds[-1].calls.append(ToolCall(call_id, function, str(arguments)))
        by_id[call_id] = {
            "id": call_id,
            "server": data["server"],
            "tool": data.get("tool"),
            "function": function,
            "arguments": arguments,
            "call_event": event.seq,
        }
        self.steps.append(by_id[call_id])

    def _answered(self, step: dict[str, Any], outcome: ToolOutcome, seq: int) -> None:
        """Record `outcome` as the result (event `seq`) of the call of `step`."""
        self.rounds[-1].results[step["id"]] = outcome
        step.update(
            content=outcome.content,
            is_error=outcome.is_error,
            duration_ms=outcome.duration_ms,
            result_event=seq,
        )
        if "approval_event" in step and "approval" not in step:
            step["approval"] = "denied" if outcome.content == DENIED else "approved"

    async def go_on(
        self,
        approvals: Approvals,
        servers: ToolServers | None,
        refs: Sequence[str],
        log: EventLog,
        subject: str,
        stream_id: str,
        epoch: int,
    ) -> list[ChatMessage]:
        """Wait on the pending calls and run those approved, close those cut off; what the
        model is sent after the conversation to go on: each answer with its results."""
        resumed = await resume_pending_calls(
            approvals, servers, refs, log, subject, stream_id, self.speaker, self.events, epoch
        )
        by_id = {step["id"]: step for step in self.steps}
        last = self.rounds[-1]
        for done in resumed:
            step = by_id.get(done["id"])
            if step is None:  # the log lost its `tool_call`: keep what the decision ran
                self.steps.append(step := dict(done))
            step.update(done)
            last.results[done["id"]] = ToolOutcome(
                done["content"], done["is_error"], done["duration_ms"]
            )
        for call in last.calls:
            if call.id not in last.results:
                outcome = ToolOutcome(CUT_OFF, True, 0.0)
                result = ToolResulted(self.speaker, call.id, CUT_OFF, True, 0.0)
                sent = await emit(log, stream_id, result, epoch)
                self._answered(by_id[call.id], outcome, sent.seq)
        messages: list[ChatMessage] = []
        for answer in self.rounds:
            if answer.calls:
                messages.append(ChatMessage("assistant", answer.text, tuple(answer.calls)))
                messages += [
                    ChatMessage(
                        "tool", tool_message_content(answer.results[c.id]), tool_call_id=c.id
                    )
                    for c in answer.calls
                ]
        return messages

    def fill(self, message: Message, answered: bool) -> Message:
        """Complete `message` (as `Generation.finish` filled it from the answers asked
        after the takeover, if `answered`) with what the cut reply had said and run."""
        message.content = self.text + message.content
        message.start_event = self.start_event
        message.tool_steps = [
            {k: v for k, v in step.items() if k != "model_content"} for step in self.steps
        ] or None
        if not answered and self.client_calls:
            message.tool_calls = self.client_calls
        if message.usage is not None:  # its answers' usage died with their writer
            message.usage.completion_tokens += estimate(0, len(self.text)).completion_tokens
            message.usage.estimated = True
        return message

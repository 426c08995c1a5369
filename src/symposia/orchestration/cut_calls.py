"""The MCP tool calls a cut turn left waiting for approval (issue 27), taken up by whoever
takes the run (or the conversation's reply: `cut_replies`) over.

The pending call is stored, so it outlives the process that asked: the new owner announces
it again (`awaiting_input`, the same call id, the same deadline), waits for the decision
(taken in any process) and, approved, runs it once, streaming its `tool_result`. The turn
itself is then closed as partial like any cut turn, the calls it ran in its `tool_steps`:
its model is never asked again (it would be paid for twice). A call that was already
answered (its `tool_result` was written) is not run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from symposia.domain.event_types import ApprovalAwaited, Speaker, ToolResulted
from symposia.domain.events import Event
from symposia.events.emit import emit
from symposia.events.log import EventLog
from symposia.providers.base import ToolCall
from symposia.tools.approvals import Approvals
from symposia.tools.servers import ToolServers
from symposia.tools.toolbox import PendingCall, Toolbox, ToolOutcome


async def resume_pending_calls(
    approvals: Approvals,
    servers: ToolServers | None,
    refs: Sequence[str],
    log: EventLog,
    subject: str,
    stream_id: str,
    speaker: Speaker,
    events: Sequence[Event],
    epoch: int,
) -> list[dict[str, Any]]:
    """Wait on for `speaker`'s calls of `subject` (`run:{id}`, `conversation:{id}`) stored
    pending by the turn of `stream_id`, run each approved one; the steps to keep in the
    closed turn's message (as `Generation` keeps them)."""
    fields = speaker.token_fields()
    mine = [e for e in events if all(e.data.get(k) == v for k, v in fields.items())]
    answered = {e.data.get("id") for e in mine if e.type == "tool_result"}
    called = {e.data.get("id"): e for e in mine if e.type == "tool_call"}
    steps: list[dict[str, Any]] = []
    for record in await approvals.pending(subject):
        if record.stream_id != stream_id or record.agent != speaker.name:
            continue
        if record.call_id in answered:
            continue
        asked: dict[str, Any] = {}

        async def announce(
            call: PendingCall, until: datetime, asked: dict[str, Any] = asked
        ) -> None:
            shown = {"id": call.id, "server": call.server, "tool": call.tool}
            waiting = ApprovalAwaited(speaker, {**shown, "arguments": call.arguments}, until)
            sent = await emit(log, stream_id, waiting, epoch)
            asked.update(approval_event=sent.seq, approval_until=until.isoformat())

        approved = await approvals.resume(record, announce)
        call = PendingCall(record.call_id, record.server, record.tool, record.arguments)
        outcome = await _run(servers, refs, call, approved)
        result = ToolResulted(
            speaker, call.id, outcome.content, outcome.is_error, outcome.duration_ms
        )
        sent = await emit(log, stream_id, result, epoch)
        asked_by = called.get(call.id)  # None when the log that had it was lost
        if asked_by is not None:
            asked.update(function=asked_by.data.get("function"), call_event=asked_by.seq)
        steps.append(
            {
                "id": call.id,
                "server": call.server,
                "tool": call.tool,
                "arguments": call.arguments,
                "content": outcome.content,
                "is_error": outcome.is_error,
                "duration_ms": outcome.duration_ms,
                "result_event": sent.seq,
                **asked,
                "approval": "approved" if approved else "denied",
            }
        )
    return steps


async def _run(
    servers: ToolServers | None, refs: Sequence[str], call: PendingCall, approved: bool
) -> ToolOutcome:
    """The call run as the turn would have (approved or denied by the decision taken)."""
    toolbox = await Toolbox.of(servers, refs) if servers is not None else None
    name = next(
        (
            function
            for function, tool in (toolbox.entries.items() if toolbox is not None else ())
            if tool.server == call.server and tool.name == call.tool
        ),
        None,
    )
    if toolbox is None or name is None:
        return ToolOutcome(f"The tool {call.server}.{call.tool} is no longer offered.", True, 0.0)

    async def decided(_: PendingCall) -> bool:
        return approved

    toolbox.approver = decided
    return await toolbox.run(ToolCall(call.id, name, call.arguments))

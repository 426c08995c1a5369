"""Rebuild a finished run's event stream from its stored transcript.

The live log is kept only for a while (and only in memory by default); after that, or
after a restart, a client can still replay the run. Each stored message becomes one
`turn_start`, one `token` holding its whole text, and one `turn_complete`.
"""

from __future__ import annotations

from typing import Any

from symposia.domain.models import Run, RunStatus
from symposia.events.log import EventLog


async def replay_transcript(log: EventLog, run: Run) -> None:
    await log.append(run.id, "run_status", {"status": RunStatus.RUNNING.value})
    for message in run.messages:
        who = {"turn": message.turn, "bot": message.bot_index, "name": message.author}
        await log.append(run.id, "turn_start", {**who, "model": message.model})
        if message.content:
            await log.append(run.id, "token", {**who, "delta": message.content})
        await log.append(
            run.id,
            "turn_complete",
            {
                **who,
                "model": message.model,
                "message_id": message.id,
                "status": message.status.value,
                "content": message.content,
                "usage": message.usage.to_dict() if message.usage else None,
            },
        )
    if run.status.finished:
        final: dict[str, Any] = {"status": run.status.value}
        if run.stop_reason:
            final["reason"] = run.stop_reason
        if run.error_message:
            final["error"] = run.error_message
        if run.error:
            await log.append(run.id, "error", run.error)
        await log.append(run.id, "run_status", final)
        await log.append(run.id, "done", {"status": run.status.value})
        await log.close(run.id)

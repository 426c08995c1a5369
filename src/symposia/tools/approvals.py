"""A person approving an MCP tool call before it runs.

The call is stored (so it outlives this process and any process can take the decision),
then announced (`awaiting_input` with the pending call), then the turn waits: for the
decision taken here (at once) or in another process (seen within `POLL_SECONDS`), or for
HUMAN_TIMEOUT_SECONDS, after which the call is denied. A denial is a tool result saying
so; the turn goes on.

A process that takes the run over finds the stored call and waits on (`resume`: the same
call id, announced again, the same deadline). When the run ends, whatever is still pending
is denied (`expire`): nothing is left waiting for a turn that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from symposia.domain.models import utcnow
from symposia.errors import ConflictError, NotFoundError
from symposia.storage.sql_approvals import APPROVED, DENIED, PENDING, ApprovalRecord, SqlApprovals
from symposia.tools.toolbox import PendingCall

POLL_SECONDS = 0.5
TIMED_OUT = "timeout"

# Says the call is waiting (an `awaiting_input` event), given when the wait ends.
Announce = Callable[[PendingCall, datetime], Awaitable[None]]


@dataclass(slots=True)
class Approvals:
    store: SqlApprovals
    timeout: float
    _waiting: dict[tuple[str, str], asyncio.Future[bool]] = field(default_factory=dict)

    async def ask(
        self, subject: str, stream_id: str, agent: str, call: PendingCall, announce: Announce
    ) -> bool:
        """Whether the owner approved `call` of `subject`'s turn (False on timeout)."""
        until = utcnow() + timedelta(seconds=self.timeout)
        record = ApprovalRecord(
            subject, call.id, stream_id, agent, call.server, call.tool, call.arguments,
            PENDING, until,
        )  # fmt: skip
        await self.store.add(record)
        return await self._await(record, call, announce)

    async def resume(self, record: ApprovalRecord, announce: Announce) -> bool:
        """Wait on for a call stored pending by a turn whose writer was cut off (this
        process took the run over): announced again, decided by its stored deadline."""
        call = PendingCall(record.call_id, record.server, record.tool, record.arguments)
        return await self._await(record, call, announce)

    async def _await(self, record: ApprovalRecord, call: PendingCall, announce: Announce) -> bool:
        key = (record.subject, record.call_id)
        decided = self._waiting[key] = asyncio.get_running_loop().create_future()
        left = (record.until - utcnow()).total_seconds()
        try:
            await announce(call, record.until)
            deadline = time.monotonic() + max(left, 0.0)
            return await self._wait(record.subject, record.call_id, decided, deadline)
        finally:
            self._waiting.pop(key, None)

    async def expire(self, subject: str, by: str) -> int:
        """Deny whatever of `subject` is still pending (its run or reply ended)."""
        return await self.store.expire(subject, by)

    async def _wait(
        self, subject: str, call_id: str, decided: asyncio.Future[bool], deadline: float
    ) -> bool:
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(decided), min(POLL_SECONDS, left))
            stored = await self.store.get(subject, call_id)
            if stored is not None and stored.status != PENDING:
                return stored.status == APPROVED  # decided in another process
        if await self.store.decide(subject, call_id, False, TIMED_OUT):
            return False
        stored = await self.store.get(subject, call_id)  # decided just as time ran out
        return stored is not None and stored.status == APPROVED

    async def decide(self, subject: str, call_id: str, approved: bool, by: str) -> str:
        """The owner's decision, as stored (`approved` or `denied`): 404 for no such call,
        409 for one already decided."""
        if not await self.store.decide(subject, call_id, approved, by):
            stored = await self.store.get(subject, call_id)
            if stored is None:
                raise NotFoundError(f"no tool call {call_id!r} waits for approval here")
            raise ConflictError(f"tool call {call_id!r} was already {stored.status}")
        waiting = self._waiting.get((subject, call_id))
        if waiting is not None and not waiting.done():
            waiting.set_result(approved)
        return APPROVED if approved else DENIED

    async def pending(self, subject: str) -> list[ApprovalRecord]:
        return await self.store.pending(subject)

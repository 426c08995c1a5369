"""What the services need from storage, so the SQL behind it stays swappable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from symposia.domain.models import BotConfig, Message, Run, RunStatus, TurnRecord


class RunRepository(Protocol):
    """Runs, their bots and transcripts. Every read returns a snapshot the caller may keep."""

    async def add(self, run: Run) -> None: ...

    async def get(self, run_id: str) -> Run | None: ...

    async def page(
        self, limit: int = 50, offset: int = 0, owner: str | None = None, id_prefix: str = ""
    ) -> list[Run]: ...

    async def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        error: dict[str, Any] | None = None,
        error_message: str | None = None,
        stop_reason: str | None = None,
        epoch: int | None = None,
        ended_by: str | None = None,
    ) -> None:
        """With `epoch` (the writer's lease), refused with `FencedOutError` unless the run
        is still held at that epoch; so are `set_done_event` and `add_message`."""
        ...

    async def set_done_event(self, run_id: str, seq: int, epoch: int | None = None) -> None:
        """Record the id of the run stream's `done` event."""
        ...

    async def claim(self, run_id: str) -> int:
        """Take the run's lease for this process; returns its new epoch (fencing token)."""
        ...

    async def add_within(
        self,
        run: Run,
        limit: int,
        lease_seconds: float,
        before_commit: Callable[[], Awaitable[None]] | None = None,
    ) -> int | None:
        """Add the run unless its owner has `limit` live runs (then: how many); nothing is
        stored if `before_commit` fails."""
        ...

    async def expired(self, lease_seconds: float, limit: int = 100) -> list[tuple[str, int]]:
        """(id, epoch) of other processes' runs whose lease lapsed or was released."""
        ...

    async def take_over(
        self, run_id: str, seen_epoch: int, lease_seconds: float, *, mine: bool = False
    ) -> tuple[int, int] | None:
        """Claim an expired lease still at `seen_epoch`: (new epoch, takeovers), or None."""
        ...

    async def release(self, run_id: str, epoch: int, last_event: int | None) -> None: ...

    async def claim_turns(self, run_id: str, records: Sequence[TurnRecord], epoch: int) -> None:
        """Record turns before their first model call (`TurnRecord`; all of a round at
        once); a turn number claimed before is refused. `add_message` closes a turn's
        record with its message."""
        ...

    async def start_turn(self, run_id: str, record: TurnRecord, claimed: bool) -> None:
        """The turn is `streaming` (recorded now if it was not `claimed` before)."""
        ...

    async def turn_records(self, run_id: str, open_only: bool = False) -> list[TurnRecord]: ...

    async def set_policy_state(self, run_id: str, state: dict[str, Any], epoch: int) -> None: ...

    async def request_stop(self, run_id: str, reason: str) -> bool: ...

    async def stops_requested(self, run_ids: Sequence[str]) -> dict[str, str]: ...

    async def branches(self, run_id: str) -> list[tuple[str, int | None]]:
        """(id, branch turn) of the runs branched from this one."""
        ...

    async def lease_of(self, run_id: str) -> tuple[int, RunStatus] | None: ...

    async def update_bot(self, run_id: str, index: int, bot: BotConfig) -> None: ...

    async def add_message(
        self, run_id: str, message: Message, epoch: int | None = None
    ) -> None: ...

    async def add_said(self, run_id: str, message: Message) -> bool:
        """Add a person's message to an unfinished run; False when it is finished."""
        ...

    async def wait_for(self, run_id: str, agent: int, until: datetime, epoch: int) -> None: ...

    async def wake(
        self, run_id: str, message: Message | None = None, *, timed_out: bool = False
    ) -> int | None: ...

    async def waits_over(self, limit: int = 100) -> list[str]: ...

    async def set_said_event(
        self, run_id: str, message_id: str, seq: int, turn: int, epoch: int
    ) -> None: ...

    async def set_edit_event(
        self, run_id: str, edit_id: int, seq: int, turn: int, epoch: int
    ) -> None: ...

    async def heartbeat(self, run_ids: Sequence[str]) -> int: ...

    async def mark_interrupted(self, stale_after: float) -> int: ...

    async def owner_of(self, run_id: str) -> tuple[str | None, RunStatus] | None: ...

    async def delete(self, run_id: str) -> bool:
        """Remove the run with its bots, edits and messages; False when it was not there."""
        ...

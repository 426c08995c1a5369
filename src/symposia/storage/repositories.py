"""What the services need from storage, so the SQL behind it stays swappable."""

from __future__ import annotations

from typing import Any, Protocol

from symposia.domain.models import BotConfig, Message, Run, RunStatus


class RunRepository(Protocol):
    """Runs, their bots and transcripts. Every read returns a snapshot the caller may keep."""

    async def add(self, run: Run) -> None: ...

    async def get(self, run_id: str) -> Run | None: ...

    async def page(
        self, limit: int = 50, offset: int = 0, owner: str | None = None
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

    async def update_bot(self, run_id: str, index: int, bot: BotConfig) -> None: ...

    async def add_message(
        self, run_id: str, message: Message, epoch: int | None = None
    ) -> None: ...

    async def bot_edits(self, run_id: str) -> list[dict[str, Any]]: ...

    async def heartbeat(self) -> int: ...

    async def mark_interrupted(self, stale_after: float) -> int: ...

    async def owner_of(self, run_id: str) -> tuple[str | None, RunStatus] | None: ...

"""The turn loops this process runs: one background task per run, never an HTTP
connection's, so viewers may come and go. Spawning, cancelling with a reason (`RunControl`
tells the loop why), and leaving: on shutdown every run is handed over to another process
(or, with RUN_RESUME=false, cancelled)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from symposia.observability import tracing
from symposia.observability.genai_spans import traced_run
from symposia.orchestration.control import HANDOVER, RunControl
from symposia.storage.failures import log_failure

logger = logging.getLogger(__name__)

HANDOVER_WRITE_SECONDS = 2.0  # for a cut run to save its turn and release its lease
SETTLE_SECONDS = 10.0  # at most, for the writes of cut runs to finish before the engine goes


@dataclass(slots=True)
class RunTasks:
    """`running`: the task of each run generated here; `owners`: whose run it is (a
    principal), known without a query while it runs. `on_forget` hears a run's owner when
    its task ends, to keep remembering it."""

    on_forget: Callable[[str, str | None], None] = lambda run_id, owner: None
    control: RunControl = field(default_factory=RunControl)
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    owners: dict[str, str | None] = field(default_factory=dict)

    def spawn(self, run_id: str, owner: str | None, work: Coroutine[Any, Any, None]) -> None:
        if tracing.TRACER is not None:  # the run's task as one span, its turns inside
            work = traced_run(run_id, work)
        task = asyncio.create_task(work, name=f"run-{run_id}")
        self.running[run_id] = task
        self.owners[run_id] = owner
        task.add_done_callback(functools.partial(self._forget, run_id))

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        self.running.pop(run_id, None)
        if run_id in self.owners:
            self.on_forget(run_id, self.owners.pop(run_id))
        self.control.stop_reasons.pop(run_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log_failure(logger, "run task failed", exc)

    def stop_asked(self, run_id: str, reason: str) -> None:
        """A stop asked on another process, for a run of this one's: cancel its task once."""
        task = self.running.get(run_id)
        if task is not None and run_id not in self.control.stop_reasons:
            self.control.stop_reasons[run_id] = reason
            task.cancel()

    async def cancel(self, run_id: str, task: asyncio.Task[None], reason: str, wait: float) -> None:
        self.control.stop_reasons.setdefault(run_id, reason)
        task.cancel()
        await asyncio.wait({task}, timeout=wait)

    async def shutdown(self, grace: float, resume: bool) -> None:
        """Hand every active run over: each may finish the turn under way within `grace`
        seconds, then is cut, keeps its partial turn and releases its lease for another
        process (or this one, restarted) to go on. Without `resume` (RUN_RESUME=false):
        cancel them, waiting up to `grace` seconds for them to record it."""
        tasks = dict(self.running)
        if not tasks:
            return
        if not resume:
            logger.info("cancelling %d active runs for shutdown", len(tasks))
            await asyncio.gather(
                *(
                    self.cancel(run_id, task, "server shutdown", grace)
                    for run_id, task in tasks.items()
                )
            )
            await _settle(tasks.values())
            return
        logger.info("handing %d active runs over for shutdown", len(tasks))
        self.control.handing_over = True
        cut = set(tasks.values())
        if grace > 0:
            _, cut = await asyncio.wait(cut, timeout=grace)
        await asyncio.gather(
            *(
                self.cancel(run_id, task, HANDOVER, HANDOVER_WRITE_SECONDS)
                for run_id, task in tasks.items()
                if task in cut
            )
        )
        await _settle(tasks.values())


async def _settle(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Let cut runs finish writing (a loaded database may be slow): the engine is disposed
    next, and a write it cut off would fail in the driver's thread."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=SETTLE_SECONDS)
        if late:
            logger.warning("%d runs were still writing when the server stopped", len(late))

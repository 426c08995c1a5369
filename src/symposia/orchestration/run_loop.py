"""The turn loop of a run: from `pending` to a finished status, whatever happens.

Every turn starts from the run as stored, so a bot edited mid-run speaks with its new
config next turn. A stop is a cancellation of this task: the current provider call is
cancelled, its partial text saved, and the run marked `cancelled` with the reason.

The task first claims the run's lease: the epoch it gets fences the run's rows and event
stream, and every write carries it. If another process claims the run meanwhile, a write
is refused (`FencedOutError`) and this task stops quietly: the run is the other's now.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from symposia.domain.event_types import RunDone, RunStatusChanged, StreamError, emit
from symposia.domain.models import RunStatus
from symposia.errors import FencedOutError
from symposia.events.log import EventLog
from symposia.orchestration.generation import GenerationFailedError
from symposia.orchestration.strategies import STRATEGIES
from symposia.orchestration.turns import TurnRunner
from symposia.storage.failures import log_failure
from symposia.storage.repositories import RunRepository

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunLoop:
    runs: RunRepository
    log: EventLog
    turns: TurnRunner

    async def execute(self, run_id: str, stop_reason: dict[str, str]) -> None:
        """Drive the run to its end; `stop_reason` is filled in by whoever cancels us."""
        epoch = await self.runs.claim(run_id)
        try:
            await self.log.fence(run_id, epoch)
            await self._drive(run_id, epoch, stop_reason)
        except FencedOutError as exc:
            _lost(run_id, exc)

    async def _drive(self, run_id: str, epoch: int, stop_reason: dict[str, str]) -> None:
        try:
            await self._set_status(run_id, epoch, RunStatus.RUNNING)
            await self._turns(run_id, epoch)
        except FencedOutError:
            raise
        except asyncio.CancelledError:
            reason = stop_reason.get(run_id, "stopped")
            try:
                await asyncio.shield(
                    self._set_status(run_id, epoch, RunStatus.CANCELLED, stop_reason=reason)
                )
                await asyncio.shield(self._end(run_id, epoch, RunStatus.CANCELLED))
            except FencedOutError as exc:
                _lost(run_id, exc)
            raise
        except GenerationFailedError as exc:
            failure = exc.failure.to_dict()
            await emit(self.log, run_id, StreamError(failure), epoch)
            await self._set_status(
                run_id, epoch, RunStatus.ERROR, error=failure, error_message=exc.failure.message
            )
            await self._end(run_id, epoch, RunStatus.ERROR)
        except Exception as exc:  # a bug must still end the run and its stream
            message = f"internal error: {type(exc).__name__}"
            await emit(self.log, run_id, StreamError.internal(message), epoch)
            try:  # the database may be what failed: the stream ends all the same
                await self._set_status(run_id, epoch, RunStatus.ERROR, error_message=message)
            finally:
                await self._end(run_id, epoch, RunStatus.ERROR)
            raise
        else:
            await self._set_status(run_id, epoch, RunStatus.COMPLETED)
            await self._end(run_id, epoch, RunStatus.COMPLETED)

    async def _turns(self, run_id: str, epoch: int) -> None:
        run = await self.runs.get(run_id)
        assert run is not None
        strategy = STRATEGIES[run.strategy]
        for turn in range(run.turn_count, run.max_turns):
            run = await self.runs.get(run_id)  # the latest bot configs
            assert run is not None
            await self.turns.take_turn(run, strategy.next_speaker(run, turn), turn, epoch)

    async def _set_status(self, run_id: str, epoch: int, status: RunStatus, **details: Any) -> None:
        await self.runs.set_status(run_id, status, epoch=epoch, **details)
        changed = RunStatusChanged(
            status, reason=details.get("stop_reason"), error=details.get("error_message")
        )
        await emit(self.log, run_id, changed, epoch)

    async def _end(self, run_id: str, epoch: int, status: RunStatus) -> None:
        done = await emit(self.log, run_id, RunDone(status), epoch)
        fenced = False
        try:  # what lets a stream rebuilt from storage end at the same id
            await self.runs.set_done_event(run_id, done.seq, epoch)
        except FencedOutError:
            fenced = True  # the stream is the new owner's to close
            raise
        except Exception as exc:  # the stream ends all the same
            log_failure(logger, "could not record the run's last event", exc)
        finally:  # last: when viewers see the end, the run's work is done
            if not fenced:
                await self.log.close(run_id)


def _lost(run_id: str, exc: FencedOutError) -> None:
    logger.warning("run %s: lease lost to another process, stopping: %s", run_id, exc)

"""The turn loop of a run: from `pending` to a finished status, whatever happens.

Every turn starts from the run as stored, so a bot edited mid-run speaks with its new
config next turn. A stop is a cancellation of this task: the current provider call is
cancelled, its partial text saved, and the run marked `cancelled` with the reason.

The task holds the run's lease: the epoch it got fences the run's rows and event stream,
and every write carries it. If another process claims the run meanwhile, a write is
refused (`FencedOutError`) and this task stops quietly: the run is the other's now.

A process that leaves hands its runs over (`RunControl.handing_over`): the turn under way
may finish, else it is cut and kept as `partial`; an `interrupted` event is written, the
lease released and the stream left open. Whoever takes the run over (`resume`: another
process, or this one restarted) closes the turns its predecessor was cut off in, says
`interrupted` if that was not said, then `resumed`, and goes on from the next turn. Every
turn is recorded (`TurnRecord`) before its model is asked, so the closing works from the
database whatever the log lost: a claimed turn is never generated again (it would be paid
for twice), and keeps its number and round.

A database or event log that cannot be reached is waited out (`_guarded`): the task
pauses under its lease, probing with backoff; when both answer it closes the turn the
outage cut, as a takeover would, and goes on. If they stay away longer than
`dependency_grace` (RUN_DEPENDENCY_GRACE_SECONDS) the run ends as `error`, stored as
soon as it can be, and its stream ends saying the same. The row and the stream never
disagree for good: a run whose stream ended while its row could not be written is
stored as the stream says by whoever takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from symposia.domain.event_types import (
    AwaitingInput,
    BotTurn,
    BotUpdated,
    Interrupted,
    PersonSaid,
    Resumed,
    RunDone,
    RunStatusChanged,
    StreamError,
)
from symposia.domain.events import Event
from symposia.domain.models import Message, MessageStatus, Run, RunStatus, TurnRecord, utcnow
from symposia.errors import BudgetExceededError, FencedOutError
from symposia.events.emit import emit
from symposia.events.log import EventLog, SerialAppender
from symposia.events.replay import resumable
from symposia.governance.call_context import CallContext, calling
from symposia.observability.genai_spans import describe_run
from symposia.orchestration import termination
from symposia.orchestration.control import HANDOVER, RunControl
from symposia.orchestration.cut_calls import resume_pending_calls
from symposia.orchestration.cut_turns import CutTurn, Save, close_cut_turn, surviving_text
from symposia.orchestration.generation import GenerationFailedError
from symposia.orchestration.outages import is_outage, until_reachable, which
from symposia.orchestration.perspective import messages_for
from symposia.orchestration.policies import (
    AwaitHuman,
    Finish,
    PolicyContext,
    Speak,
    policy_named,
)
from symposia.orchestration.policies.decisions import announce_lost_decisions
from symposia.orchestration.turns import TurnRunner
from symposia.providers.pricing import PriceTable
from symposia.storage.failures import log_failure, summary
from symposia.storage.repositories import RunRepository

logger = logging.getLogger(__name__)

OWNER_LOST = "the process generating the run stopped"


class _HandOverError(Exception):
    """Raised between turns when this process is leaving."""


class _WaitingError(Exception):
    """Raised when the run waits for a person: it holds no task and no lease meanwhile."""


HUMAN_TIMEOUT = "human_timeout"
# `ended_by` of a run whose next turn its owner key's budget could not hold.
KEY_BUDGET = "key_budget"
# `ended_by` of a run ended because its database or event log stayed unreachable.
DEPENDENCY_LOST = "dependency_unavailable"


@dataclass(slots=True)
class RunLoop:
    runs: RunRepository
    log: EventLog
    turns: TurnRunner
    # Most events one turn can write after its `turn_start` (its tokens and its end): the
    # ids a turn cut off with its log may have used.
    turn_events_max: int = 4096 + 2
    max_takeovers: int = 3
    prices: PriceTable | None = None
    human_timeout: float = 600.0
    # How long a run waits, paused, for its database and event log to answer again
    # (RUN_DEPENDENCY_GRACE_SECONDS) before it ends as `error`.
    dependency_grace: float = 300.0

    async def execute(self, run_id: str, control: RunControl) -> None:
        """Drive a new run to its end; `control` says why, if we are cancelled."""
        epoch = await self.runs.claim(run_id)
        try:
            begin = functools.partial(self._begin, run_id, epoch, control)
            await self._guarded(run_id, epoch, control, begin)
        except FencedOutError as exc:
            _lost(run_id, exc)

    async def _begin(self, run_id: str, epoch: int, control: RunControl) -> None:
        try:
            await self.log.fence(run_id, epoch)
        except asyncio.CancelledError:
            await self._cut_before_drive(run_id, epoch, control)
            raise
        await self._drive(run_id, epoch, control, begin=True)

    async def resume(self, run_id: str, epoch: int, takeovers: int, control: RunControl) -> None:
        """Go on with a run taken over at `epoch` (see the module docstring)."""
        try:
            recover = functools.partial(
                self._recover, run_id, epoch, control, OWNER_LOST, takeovers
            )
            await self._guarded(run_id, epoch, control, recover)
        except FencedOutError as exc:
            _lost(run_id, exc)

    async def _recover(
        self,
        run_id: str,
        epoch: int,
        control: RunControl,
        reason: str,
        takeovers: int | None = None,
    ) -> None:
        """Go on with a run whose writer was cut off: taken over (`takeovers` counts it), or
        this task's own after an outage. A turn cut off is closed as partial, never taken
        again; a stream that had already ended ends the run as it says."""
        try:
            try:
                run = await self._run(run_id)
                await self._restore_if_lost(run)
                await self.log.fence(run_id, epoch)
                if await self._already_ended(run, epoch):
                    return
                run = await self._close_cut_turn(run, epoch, reason, resume_calls=True)
            except FencedOutError:
                raise
            except Exception as exc:  # a bug must still end the run and its stream
                if is_outage(exc):
                    raise
                await self._crashed(run_id, epoch, exc)
                raise
            if run.stop_requested is not None:
                await self._finish(run_id, epoch, RunStatus.CANCELLED, run.stop_requested, "stop")
                return
            if takeovers is not None and takeovers > self.max_takeovers:
                reason = f"taken over {takeovers - 1} times, the most allowed (RUN_MAX_TAKEOVERS)"
                await self._finish(run_id, epoch, RunStatus.INTERRUPTED, reason, "takeovers")
                return
            resumed = Resumed(run.turn_count, run.takeovers if takeovers is None else takeovers)
            await emit(self.log, run_id, resumed, epoch)
        except asyncio.CancelledError:
            await self._cut_before_drive(run_id, epoch, control)
            raise
        logger.info("run %s: resumed at turn %d", run_id, run.turn_count)
        await self._drive(run_id, epoch, control, begin=run.status is RunStatus.PENDING)

    async def _cut_before_drive(self, run_id: str, epoch: int, control: RunControl) -> None:
        """A stop (here, or polled from another process) cancelled the run while it was
        being set up or recovered, before `_drive` (which handles its own): end it as
        cancelled, finishing an end that the cancel cut half-way (`_already_ended`), so
        the run is not left `pending` or `running` with no task until its lease lapses.
        Handed over instead: the lease lapses and the next owner goes on."""
        reason = control.stop_reasons.get(run_id, "stopped")
        if reason == HANDOVER:
            return
        try:
            await asyncio.shield(self._end_stopped(run_id, epoch, reason))
        except FencedOutError as exc:
            _lost(run_id, exc)

    async def _end_stopped(self, run_id: str, epoch: int, reason: str) -> None:
        try:
            if await self._already_ended(await self._run(run_id), epoch):
                return
        except FencedOutError:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
        await self._stopped(run_id, epoch, reason)

    async def _guarded(
        self, run_id: str, epoch: int, control: RunControl, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Do `work` under the lease; each time the store or the log fails, wait it out
        (`_outage`) and do what that says next."""
        while True:
            try:
                await work()
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise
                work = await self._outage(run_id, epoch, control, exc)

    async def _outage(
        self, run_id: str, epoch: int, control: RunControl, exc: BaseException
    ) -> Callable[[], Awaitable[None]]:
        """The run's store or log failed: pause under the lease, probing both with backoff
        for up to `dependency_grace` seconds. What comes next: when they answer, close the
        turn the outage cut (kept as partial, never generated again) and go on; past the
        grace, end the run as `error`, with the reason, as soon as it can write. A stop
        meanwhile ends it as `cancelled`, likewise."""
        what = which(exc)
        logger.warning(
            "run %s: %s is unreachable (%s); pausing for up to %g s",
            run_id,
            what,
            summary(exc),
            self.dependency_grace,
        )
        deadline = asyncio.get_running_loop().time() + self.dependency_grace
        probe = functools.partial(self._probe, run_id, epoch)
        try:
            back = await until_reachable(probe, deadline, f"run {run_id}: {what}")
        except asyncio.CancelledError:
            reason = control.stop_reasons.get(run_id, "stopped")
            if reason != HANDOVER:  # leaving: the lease lapses, the next owner goes on
                stopped = self._end_when_reachable(
                    run_id, epoch, RunStatus.CANCELLED, reason, "stop"
                )
                with contextlib.suppress(FencedOutError):
                    await asyncio.shield(stopped)
            raise
        if back:
            logger.info("run %s: %s answers again; going on", run_id, what)
            return functools.partial(
                self._recover, run_id, epoch, control, f"{what} was unreachable"
            )
        reason = (
            f"{what} was unreachable for more than {self.dependency_grace:g} s "
            "(RUN_DEPENDENCY_GRACE_SECONDS)"
        )
        return functools.partial(
            self._end_when_reachable, run_id, epoch, RunStatus.ERROR, reason, DEPENDENCY_LOST
        )

    async def _probe(self, run_id: str, epoch: int) -> None:
        """One cheap read of each dependency; fenced out if the run was taken meanwhile."""
        lease = await self.runs.lease_of(run_id)
        if lease is None:
            raise LookupError(f"no run {run_id}")
        if lease[0] != epoch:
            raise FencedOutError(f"run {run_id} is held at lease epoch {lease[0]}, not {epoch}")
        await self.log.exists(run_id)

    async def _end_when_reachable(
        self, run_id: str, epoch: int, status: RunStatus, reason: str, ended_by: str | None
    ) -> None:
        """End the run once its store and log answer, waiting as long as it takes: the
        turn that was cut closed as partial, the status stored with `reason`, then the
        stream's ending (a viewer sees the end the run's row says)."""
        probe = functools.partial(self._probe, run_id, epoch)
        while True:
            await until_reachable(probe, None, f"run {run_id}")
            try:
                run = await self._run(run_id)
                await self._restore_if_lost(run)
                if await self._already_ended(run, epoch):
                    return
                await self._close_cut_turn(run, epoch, reason)
                if status is RunStatus.ERROR:
                    await self._set_status(
                        run_id, epoch, status, error_message=reason, ended_by=ended_by
                    )
                    await self._end(run_id, epoch, status, ended_by)
                else:
                    await self._finish(run_id, epoch, status, reason, ended_by)
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise

    async def _already_ended(self, run: Run, epoch: int) -> bool:
        """Whether the run already ended on one side: its stream's `done` was written but
        the row not (the store failed as the run ended), or the other way round. Then the
        other side is made to say the same, rather than the run going on (or appending to
        a closed stream)."""
        last = await self.log.last_seq(run.id)
        tail = await self.log.read(run.id, max(last - 1, 0))
        if tail and tail[-1].type == "done":
            done = tail[-1]
            status = RunStatus(done.data["status"])
            message = None
            if status is RunStatus.ERROR and run.error_message is None:
                message = "the run's stream ended before its status could be stored"
            ended_by = done.data.get("ended_by")
            await self._expire_calls(run.id, epoch, status)
            await self.runs.set_status(
                run.id, status, epoch=epoch, error_message=message, ended_by=ended_by
            )
            await self.runs.set_done_event(run.id, done.seq, epoch)
            logger.warning("run %s: its stream had ended (%s); stored so", run.id, status.value)
            return True
        if run.status.finished:  # stored, but its stream's end was not written
            await self._end(run.id, epoch, run.status, run.ended_by)
            return True
        return False

    async def _run(self, run_id: str) -> Run:
        run = await self.runs.get(run_id)
        if run is None:
            raise LookupError(f"no run {run_id}")
        return run

    async def _restore_if_lost(self, run: Run) -> None:
        """Put the run's stream back in the log from storage when the log lost it (it was in
        a stopped process's memory, or Redis was emptied): its open turns' `turn_start`s
        at their ids, a snapshot for every other id the lost log may have used."""
        if await self.log.exists(run.id):
            return
        open_turns = await self.runs.turn_records(run.id, open_only=True)
        await self.log.restore(run.id, resumable(run, self.turn_events_max, open_turns))

    async def _close_cut_turn(
        self, run: Run, epoch: int, reason: str = OWNER_LOST, resume_calls: bool = False
    ) -> Run:
        """Close every turn the last owner claimed and did not finish (its turn records say
        which, whatever the log kept) as `partial`, with the text the log still has of it,
        at its own turn number and round; announce a decision the log lost; and say the run
        was interrupted (for `reason`) if that was not said. With `resume_calls`, a turn's
        MCP calls stored as waiting for approval are waited for (and run) first
        (`cut_calls`)."""
        cut_records, events = await self._close_open_turns(run, epoch, resume_calls)
        if cut_records:
            run = await self._run(run.id)
        await announce_lost_decisions(
            run, PolicyContext(self.runs, self.log, self.turns.models, epoch)
        )
        if not cut_records and _interruption_said(events, run.last_event):
            return run
        await emit(self.log, run.id, Interrupted(reason, run.turn_count), epoch)
        return run

    async def _close_open_turns(
        self, run: Run, epoch: int, resume_calls: bool = False
    ) -> tuple[list[TurnRecord], list[Event]]:
        """`_close_cut_turn`'s closing: the open turn records, and the events read."""
        cut_records = await self.runs.turn_records(run.id, open_only=True)
        closed = max((m.complete_event or 0 for m in run.messages), default=0)
        starts = [r.start_event - 1 for r in cut_records if r.start_event is not None]
        events = await self.log.read(run.id, min([closed, *starts]))
        for record in cut_records:
            speaker = BotTurn(record.turn, record.bot, run.bots[record.bot].name, record.round)
            cut = CutTurn(speaker, record.model, record.start_event, record.prompt_chars or 0)
            steps: list[dict[str, Any]] = []
            if resume_calls and self.turns.approvals is not None:
                steps = await resume_pending_calls(
                    self.turns.approvals,
                    self.turns.tools,
                    run.bots[record.bot].tools,
                    self.log,
                    f"run:{run.id}",
                    run.id,
                    speaker,
                    events,
                    epoch,
                )
            await close_cut_turn(
                self.log,
                run.id,
                cut,
                surviving_text(events, speaker),
                epoch,
                _saver(self.runs, run.id, epoch, self.prices),
                keep_empty=True,  # the turn was taken (maybe paid for): its number stays
                bot_index=record.bot,
                turn=record.turn,
                round=record.round,
                tool_steps=steps or None,
            )
        return cut_records, events

    async def _drive(
        self, run_id: str, epoch: int, control: RunControl, begin: bool = False
    ) -> None:
        try:
            if begin:
                await self._set_status(run_id, epoch, RunStatus.RUNNING)
            finish = await self._turns(run_id, epoch, control)
        except FencedOutError:
            raise
        except _HandOverError:
            await self._hand_over(run_id, epoch)
        except _WaitingError:
            return  # a person's message (or the timeout) wakes the run: see `wake`
        except asyncio.CancelledError:
            reason = control.stop_reasons.get(run_id, "stopped")
            try:
                if reason == HANDOVER:
                    await asyncio.shield(self._hand_over(run_id, epoch))
                else:
                    await asyncio.shield(self._stopped(run_id, epoch, reason))
            except FencedOutError as exc:
                _lost(run_id, exc)
            raise
        except GenerationFailedError as exc:
            if exc.failure.code == BudgetExceededError.code:
                # The key's budget cannot hold another turn: the run ends, as a
                # termination condition ends it, saying why.
                reason = exc.failure.message
                await self._finish(run_id, epoch, RunStatus.COMPLETED, reason, KEY_BUDGET)
                return
            try:
                failure = exc.failure.to_dict()
                await emit(self.log, run_id, StreamError(failure), epoch)
                await self._set_status(
                    run_id,
                    epoch,
                    RunStatus.ERROR,
                    error=failure,
                    error_message=exc.failure.message,
                )
                await self._end(run_id, epoch, RunStatus.ERROR)
            except Exception as failed:
                if not is_outage(failed):
                    raise
                await self._end_when_reachable(
                    run_id, epoch, RunStatus.ERROR, exc.failure.message, None
                )
        except Exception as exc:  # a bug must still end the run and its stream
            if is_outage(exc):
                raise  # not the run's fault: waited out (`_guarded`)
            await self._crashed(run_id, epoch, exc)
            raise
        else:
            await self._finish(run_id, epoch, RunStatus.COMPLETED, finish.reason, finish.ended_by)

    async def _stopped(self, run_id: str, epoch: int, reason: str) -> None:
        """Record a stop; if the store or log is down, as soon as they answer. A turn
        stopped while a call of it waited for approval was left open (`TurnRunner`): it
        is closed here, as partial."""
        try:
            approvals = self.turns.approvals
            if approvals is not None and await approvals.pending(f"run:{run_id}"):
                await self._close_open_turns(await self._run(run_id), epoch)
            await self._finish(run_id, epoch, RunStatus.CANCELLED, reason, "stop")
        except Exception as exc:
            if not is_outage(exc):
                raise
            await self._end_when_reachable(run_id, epoch, RunStatus.CANCELLED, reason, "stop")

    async def _crashed(self, run_id: str, epoch: int, exc: Exception) -> None:
        """A bug ends the run as `error`: stored first (no row may say `running` behind a
        stream that ended; if the store is down, the stream stays open for whoever takes
        the run over), then the stream ended as far as the log takes it."""
        message = f"internal error: {type(exc).__name__}"
        await self.runs.set_status(run_id, RunStatus.ERROR, epoch=epoch, error_message=message)
        try:
            await emit(self.log, run_id, StreamError.internal(message), epoch)
            changed = RunStatusChanged(RunStatus.ERROR, error=message)
            await emit(self.log, run_id, changed, epoch)
            await self._end(run_id, epoch, RunStatus.ERROR)
        except FencedOutError:
            raise
        except Exception as failed:  # e.g. a stream that was closed already
            log_failure(logger, f"run {run_id}: could not end its stream", failed)

    async def _turns(self, run_id: str, epoch: int, control: RunControl) -> Finish:
        """Ask the run's policy what comes next until it, or a termination condition, ends
        the run. Every step starts from the run as stored (the latest bot configs, the
        policy's state), so whoever holds the run goes on from where it is."""
        context = PolicyContext(self.runs, self.log, self.turns.models, epoch)
        while True:
            if control.handing_over:
                raise _HandOverError
            run = await self._run(run_id)
            describe_run(run.strategy, len(run.bots))
            await self._announce(run, epoch)
            next_cost = 0.0
            if self.prices is not None and termination.uses(run.termination, "max_cost_usd"):
                next_cost = self.prices.next_turn_at_most(run)
            ended_by = termination.met(run.termination, run, utcnow(), next_cost)
            if ended_by is not None:
                return Finish(ended_by)
            call = CallContext(run.owner, "run", run_id=run.id)  # for the meter
            with calling(replace(call, surface="run.choice")):
                decision = await policy_named(run.strategy).decide(run, context)
            if isinstance(decision, Finish):
                return decision
            if isinstance(decision, AwaitHuman):
                await self._wait(run, decision.agent, epoch)
                raise _WaitingError
            with calling(call):
                await self._speak(run, decision, epoch)

    async def _speak(self, run: Run, decision: Speak, epoch: int) -> None:
        """The turns the policy asked for: one, or several at once (each its own turn
        number, all in one round), their events interleaved on the run's stream. If one
        fails or the run is stopped, the others are cut too, each keeping its text."""
        perspective = decision.perspective or messages_for
        if len(decision.agents) == 1:  # claimed as it starts (`take_turn`)
            (agent,) = decision.agents
            await self.turns.take_turn(
                run, agent, run.turn_count, epoch, decision.round, perspective=perspective
            )
            return
        claimed = [
            TurnRecord(run.turn_count + i, agent, run.bots[agent].model, epoch, decision.round)
            for i, agent in enumerate(decision.agents)
        ]
        await self.runs.claim_turns(run.id, claimed, epoch)  # the round, before any call
        writer = SerialAppender(self.log)
        tasks = [
            asyncio.create_task(
                self.turns.take_turn(
                    run,
                    agent,
                    run.turn_count + i,
                    epoch,
                    decision.round,
                    writer,
                    perspective,
                    claimed=True,
                )
            )
            for i, agent in enumerate(decision.agents)
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _wait(self, run: Run, agent: int, epoch: int) -> None:
        """Say whom the run waits for and until when, then release it: `awaiting_input`."""
        until = utcnow() + timedelta(seconds=self.human_timeout)
        waiting = RunStatusChanged(RunStatus.AWAITING_INPUT)
        await emit(self.log, run.id, waiting, epoch)
        await emit(self.log, run.id, AwaitingInput(agent, run.bots[agent].name, until), epoch)
        await self.runs.wait_for(run.id, agent, until, epoch)

    async def wake(
        self, run_id: str, epoch: int, control: RunControl, timed_out: bool = False
    ) -> None:
        """Go on with a run that waited for a person, claimed at `epoch` by whoever woke it:
        the person spoke (their turn is stored), the wait timed out (the turn is skipped or
        the run ends, as the run says), or a stop came."""
        try:
            run = await self._run(run_id)
            await self._restore_if_lost(run)  # it may have waited longer than a process lived
            await self.log.fence(run_id, epoch)
            if run.stop_requested is not None:
                await self._finish(run_id, epoch, RunStatus.CANCELLED, run.stop_requested, "stop")
                return
            await emit(self.log, run_id, RunStatusChanged(RunStatus.RUNNING), epoch)
            if timed_out:
                if run.on_human_timeout == "end":
                    await self._finish(run_id, epoch, RunStatus.COMPLETED, None, HUMAN_TIMEOUT)
                    return
                agent = run.open_turn_bot if run.open_turn_bot is not None else 0
                skipped = Message(
                    role="user",
                    author=run.bots[agent].name,
                    content="",
                    status=MessageStatus.PARTIAL,
                    bot_index=agent,
                    turn=run.turn_count,
                    completed_at=utcnow(),
                )
                await self.runs.add_message(run_id, skipped, epoch)
            drive = functools.partial(self._drive, run_id, epoch, control)
            await self._guarded(run_id, epoch, control, drive)
        except FencedOutError as exc:
            _lost(run_id, exc)

    async def _announce(self, run: Run, epoch: int) -> None:
        """Stream the bot edits and people's messages added since the last step (any
        process stores them; only the owner writes the stream, so its ids stay its own to
        number). The next turn is the first to see them: it is a message's `turn` (one
        said while a turn was under way is stored with that turn's successor already, but
        only here is it known which turn comes next), unless it is a human agent's own."""
        for change in run.edits:
            if change.event is None:
                name = run.bots[change.bot].name
                updated = BotUpdated(change.bot, name, change.changes, run.turn_count)
                announced = await emit(self.log, run.id, updated, epoch)
                await self.runs.set_edit_event(
                    run.id, change.id, announced.seq, run.turn_count, epoch
                )
                change.event, change.turn = announced.seq, run.turn_count
        since = run.branch_turn or 0
        for message in run.messages:
            if (
                message.role == "user"
                and message.start_event is None
                and (message.turn or 0) >= since
            ):
                if message.bot_index is None or message.turn is None:  # not an agent's turn
                    message.turn = run.turn_count
                said = await emit(self.log, run.id, PersonSaid(message), epoch)
                await self.runs.set_said_event(run.id, message.id, said.seq, message.turn, epoch)
                message.start_event = message.complete_event = said.seq

    async def _hand_over(self, run_id: str, epoch: int) -> None:
        """Leave the run to another process: say so, and release the lease. The stream
        stays open for the events the next owner writes."""
        run = await self._run(run_id)
        said = await emit(self.log, run_id, Interrupted(HANDOVER, run.turn_count), epoch)
        await self.runs.release(run_id, epoch, said.seq)
        logger.info("run %s: handed over at turn %d", run_id, run.turn_count)

    async def _finish(
        self,
        run_id: str,
        epoch: int,
        status: RunStatus,
        reason: str | None = None,
        ended_by: str | None = None,
    ) -> None:
        await self._set_status(run_id, epoch, status, stop_reason=reason, ended_by=ended_by)
        await self._end(run_id, epoch, status, ended_by)

    async def _set_status(self, run_id: str, epoch: int, status: RunStatus, **details: Any) -> None:
        await self.runs.set_status(run_id, status, epoch=epoch, **details)
        if status.finished:
            # What people said since the last turn (a stop before the next one): stored,
            # so streamed too. After the status is stored, so none said later is taken.
            await self._announce(await self._run(run_id), epoch)
        changed = RunStatusChanged(
            status,
            reason=details.get("stop_reason"),
            error=details.get("error_message"),
            ended_by=details.get("ended_by"),
        )
        await emit(self.log, run_id, changed, epoch)

    async def _end(
        self, run_id: str, epoch: int, status: RunStatus, ended_by: str | None = None
    ) -> None:
        await self._expire_calls(run_id, epoch, status)
        done = await emit(self.log, run_id, RunDone(status, ended_by), epoch)
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

    async def _expire_calls(self, run_id: str, epoch: int, status: RunStatus) -> None:
        """The run ends: a tool call still waiting for approval is denied, never left
        pending (`decided_by` says why: `run_completed`, `run_cancelled`, ...). Only by
        the run's owner: a stale one must not deny the call its successor waits on."""
        if self.turns.approvals is None:
            return
        try:
            lease = await self.runs.lease_of(run_id)
            if lease is not None and lease[0] != epoch:
                return
            await self.turns.approvals.expire(f"run:{run_id}", f"run_{status.value}")
        except Exception as exc:  # the run ends all the same
            log_failure(logger, f"run {run_id}: could not expire its pending calls", exc)


def _saver(runs: RunRepository, run_id: str, epoch: int, prices: PriceTable | None) -> Save:
    """Saves a cut turn's message into the run's transcript (priced as a live turn is),
    which closes its turn record, as the run's owner."""

    async def save(message: Message) -> None:
        if prices is not None:
            message.cost_usd = prices.cost(message.model, message.usage)
        await runs.add_message(run_id, message, epoch)

    return save


def _interruption_said(events: list[Event], handed_over_at: int | None) -> bool:
    """Whether the stream's last event says the run was interrupted: it is `interrupted`,
    or it is the departing owner's own (`handed_over_at`), restored as a `snapshot`."""
    if not events:
        return False
    last = events[-1]
    return last.type == "interrupted" or (handed_over_at is not None and last.seq <= handed_over_at)


def _lost(run_id: str, exc: FencedOutError) -> None:
    logger.warning("run %s: lease lost to another process, stopping: %s", run_id, exc)

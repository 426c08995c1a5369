"""One turn of a run: a bot produces one message, streamed into the run's event log.

The partial text is saved whatever happens: a stop (cancellation) or a provider failure
after the first delta keeps what was said, with status `partial`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from symposia.aio import complete
from symposia.domain.event_types import BotTurn, TurnComplete, TurnStart
from symposia.domain.models import Message, MessageStatus, Run, TurnRecord, TurnState
from symposia.events.emit import emit
from symposia.events.log import EventLog, SerialAppender
from symposia.observability.genai_spans import agent_turn
from symposia.orchestration.context import fit
from symposia.orchestration.generation import (
    Generation,
    GenerationFailedError,
    Models,
    check_budget,
    prompt_chars,
)
from symposia.orchestration.perspective import messages_for
from symposia.providers.base import ChatMessage
from symposia.providers.pricing import PriceTable
from symposia.storage.repositories import RunRepository
from symposia.tools.approvals import Approvals
from symposia.tools.servers import ToolServers
from symposia.tools.toolbox import DEFAULT_MAX_TOOL_STEPS, Toolbox

DEFAULT_CONTEXT_BUDGET = 8000
# What a bot is shown of the run: by default `messages_for`; a policy may show less.
Perspective = Callable[[Run, int], list[ChatMessage]]


@dataclass(slots=True)
class TurnRunner:
    runs: RunRepository
    log: EventLog
    models: Models
    context_budget: int = DEFAULT_CONTEXT_BUDGET
    prices: PriceTable | None = None
    tools: ToolServers | None = None
    max_tool_steps: int = DEFAULT_MAX_TOOL_STEPS
    approvals: Approvals | None = None

    async def take_turn(
        self,
        run: Run,
        bot_index: int,
        turn: int,
        epoch: int | None = None,
        round: int | None = None,
        writer: SerialAppender | None = None,
        perspective: Perspective = messages_for,
        claimed: bool = False,
    ) -> Message:
        """`_take_turn` as an `invoke_agent` span when tracing is on."""
        bot = run.bots[bot_index]
        with agent_turn(run.id, bot.name, bot_index, bot.model, turn, round):
            return await self._take_turn(
                run, bot_index, turn, epoch, round, writer, perspective, claimed
            )

    async def _take_turn(
        self,
        run: Run,
        bot_index: int,
        turn: int,
        epoch: int | None = None,
        round: int | None = None,
        writer: SerialAppender | None = None,
        perspective: Perspective = messages_for,
        claimed: bool = False,
    ) -> Message:
        """Every write carries `epoch`, the run's lease held by this process; with it, the
        turn is recorded before its model is asked (`TurnRecord`): here, unless it was
        `claimed` already (with the rest of its round). Turns taken in parallel share a
        `writer`, so each one's "next id" is still its own."""
        bot = run.bots[bot_index]
        message = Message(
            role="assistant",
            author=bot.name,
            content="",
            model=bot.model,
            bot_index=bot_index,
            turn=turn,
            round=round,
        )
        speaker = BotTurn(turn, bot_index, bot.name, round)
        messages = fit(perspective(run, bot_index), self.context_budget - bot.max_tokens)
        # A turn its key cannot pay for is refused before it is recorded: no message.
        await check_budget(self.models, [bot.model, *bot.fallbacks], messages, bot.max_tokens)
        async with _alone(writer):
            if epoch is not None:
                # Recorded first, so a new owner knows where the turn's events began even
                # when the log that had them is gone; no other writer appends meanwhile,
                # so the `turn_start` about to be sent is the next id.
                record = TurnRecord(
                    turn,
                    bot_index,
                    bot.model,
                    epoch,
                    round,
                    TurnState.STREAMING,
                    start_event=await self.log.last_seq(run.id) + 1,
                    prompt_chars=prompt_chars(messages),
                )
                await self.runs.start_turn(run.id, record, claimed)
            started = await emit(self.log, run.id, TurnStart(speaker, bot.model), epoch)
        message.start_event = started.seq
        generation = Generation(self.models, writer or self.log, run.id, speaker, epoch)
        generation.approvals, generation.subject = self.approvals, f"run:{run.id}"
        status = MessageStatus.PARTIAL
        try:
            toolbox = None
            if bot.tools and self.tools is not None:
                toolbox = await Toolbox.of(self.tools, bot.tools, self.max_tool_steps)
            await generation.stream(
                [bot.model, *bot.fallbacks],
                messages,
                bot.temperature,
                bot.max_tokens,
                toolbox=toolbox,
            )
            status = MessageStatus.COMPLETE
        finally:
            # Cut while a call waited for approval, a leased turn stays open: the next
            # owner waits on the stored call, then closes it (`cut_calls`); a stop closes it.
            if not (generation.cut_while_waiting and epoch is not None):
                generation.finish(message, status, prompt_chars(messages))
                if self.prices is not None:
                    message.cost_usd = self.prices.cost(message.model, message.usage)
                # A stop arriving now must not lose text the model already produced.
                await complete(self._record(run, speaker, message, epoch, writer))
        return message

    async def _record(
        self,
        run: Run,
        speaker: BotTurn,
        message: Message,
        epoch: int | None,
        writer: SerialAppender | None = None,
    ) -> None:
        """Save the message, then say so. This task is the stream's only writer, so the
        `turn_complete` about to be sent is the next id, stored with the message. A turn of
        a leased run is saved whatever it said, even cut before its first word: it was
        claimed (its model may have been asked), so it is never taken again, and its
        number is taken."""
        async with _alone(writer):
            if epoch is not None or message.content or message.status is MessageStatus.COMPLETE:
                message.complete_event = await self.log.last_seq(run.id) + 1
                await self.runs.add_message(run.id, message, epoch)
            else:
                message.complete_event = None
            await emit(self.log, run.id, TurnComplete(speaker, message), epoch)


def _alone(writer: SerialAppender | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """No other writer's event until the block ends (nothing to do for a lone writer)."""
    return writer.lock if writer is not None else contextlib.nullcontext()


__all__ = ["GenerationFailedError", "TurnRunner"]

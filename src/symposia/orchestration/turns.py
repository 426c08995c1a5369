"""One turn of a run: a bot produces one message, streamed into the run's event log.

The partial text is saved whatever happens: a stop (cancellation) or a provider failure
after the first delta keeps what was said, with status `partial`.
"""

from __future__ import annotations

from dataclasses import dataclass

from symposia.aio import complete
from symposia.domain.models import Message, MessageStatus, Run
from symposia.events.log import EventLog
from symposia.orchestration.context import fit
from symposia.orchestration.generation import (
    Generation,
    GenerationFailedError,
    Models,
    prompt_chars,
)
from symposia.orchestration.perspective import messages_for
from symposia.storage.repositories import RunRepository

DEFAULT_CONTEXT_BUDGET = 8000


@dataclass(slots=True)
class TurnRunner:
    runs: RunRepository
    log: EventLog
    models: Models
    context_budget: int = DEFAULT_CONTEXT_BUDGET

    async def take_turn(self, run: Run, bot_index: int, turn: int) -> Message:
        bot = run.bots[bot_index]
        message = Message(
            role="assistant",
            author=bot.name,
            content="",
            model=bot.model,
            bot_index=bot_index,
            turn=turn,
        )
        await self.log.append(
            run.id,
            "turn_start",
            {"turn": turn, "bot": bot_index, "name": bot.name, "model": bot.model},
        )
        messages = fit(messages_for(run, bot_index), self.context_budget - bot.max_tokens)
        generation = Generation(
            self.models, self.log, run.id, {"turn": turn, "bot": bot_index, "name": bot.name}
        )
        status = MessageStatus.PARTIAL
        try:
            await generation.stream(
                [bot.model, *bot.fallbacks], messages, bot.temperature, bot.max_tokens
            )
            status = MessageStatus.COMPLETE
        finally:
            generation.finish(message, status, prompt_chars(messages))
            # A stop arriving now must not lose text the model already produced.
            await complete(self._record(run, message))
        return message

    async def _record(self, run: Run, message: Message) -> None:
        if message.content:
            await self.runs.add_message(run.id, message)
        assert message.usage is not None
        await self.log.append(
            run.id,
            "turn_complete",
            {
                "turn": message.turn,
                "bot": message.bot_index,
                "name": message.author,
                "model": message.model,
                "message_id": message.id if message.content else None,
                "status": message.status.value,
                "content": message.content,
                "usage": message.usage.to_dict(),
            },
        )


__all__ = ["GenerationFailedError", "TurnRunner"]

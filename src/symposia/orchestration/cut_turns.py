"""Closing a turn whose writer was cut off: one way for every leased stream.

A run's turn and a conversation's reply are the same thing here: a turn written to a stream
by a process holding its lease. When that process dies, is fenced out or hands the stream
over mid-turn, whoever takes the stream over closes the turn, whichever kind it is:

- what the log still has of its text (its `token` events; nothing if the log was lost)
  becomes a `partial` message, its usage estimated as a live call without reported usage is
  (`answer.estimate`: about four characters a token) and marked `estimated`;
- the message is saved (the caller's `save`: a run's transcript, a reply's record);
- the stream says so: `turn_start` first if the writer never wrote one, then
  `turn_complete`, numbered after the last id the log has.

The turn is never asked of a model again: it would be paid for twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from symposia.domain.event_types import Payload, Speaker, TurnComplete, TurnStart
from symposia.domain.events import Event
from symposia.domain.models import Message, MessageStatus, utcnow
from symposia.events.emit import emit
from symposia.events.log import EventLog
from symposia.orchestration.answer import estimate

Save = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CutTurn:
    """A turn cut off with its writer: who spoke with which model, the id of its
    `turn_start` (None when none was written) and the size of the prompt it was sent
    (0 when unknown)."""

    speaker: Speaker
    model: str | None
    start_event: int | None = None
    prompt_chars: int = 0


def surviving_text(events: Sequence[Event], speaker: Speaker) -> str:
    """The text `speaker`'s tokens in `events` carry."""
    fields = speaker.token_fields()
    return "".join(
        str(e.data.get("delta", ""))
        for e in events
        if e.type == "token" and all(e.data.get(k) == v for k, v in fields.items())
    )


async def close_cut_turn(
    log: EventLog,
    stream_id: str,
    cut: CutTurn,
    text: str,
    epoch: int,
    save: Save,
    *,
    keep_empty: bool,
    **fields: Any,
) -> Message:
    """Close `cut` with `text` (see the module docstring); `fields` complete the message
    (a run turn's `bot_index`, `turn`, `round`; a reply's `routing`). `keep_empty`: the
    message is kept even without text (a run's turn number is taken; a reply with nothing
    to show saves nothing, and its `turn_complete` names no message)."""
    payloads: list[Payload] = (
        [] if cut.start_event is not None else [TurnStart(cut.speaker, cut.model)]
    )
    next_id = await log.last_seq(stream_id) + 1
    message = Message(
        role="assistant",
        author=cut.speaker.name,
        content=text,
        model=cut.model,
        status=MessageStatus.PARTIAL,
        usage=estimate(cut.prompt_chars, len(text)),
        completed_at=utcnow(),
        start_event=cut.start_event if cut.start_event is not None else next_id,
        complete_event=next_id + len(payloads),
        **fields,
    )
    await save(message)
    payloads.append(TurnComplete(cut.speaker, message, saved=keep_empty or bool(text)))
    for payload in payloads:
        await emit(log, stream_id, payload, epoch)
    return message

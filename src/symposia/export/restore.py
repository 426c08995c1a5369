"""A run rebuilt from its JSON export, to be stored as a finished run of a new owner.

The run and its messages get new ids (the document's ids belong to the server it came
from), and so do branch links (`parent_id`, `branches`), which are not carried over. A
run exported while it went on is `interrupted`: its turns stop where the export did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from symposia.domain.models import (
    BotConfig,
    BotEdit,
    Message,
    MessageStatus,
    Run,
    RunStatus,
    TurnUsage,
    new_id,
    utcnow,
)
from symposia.errors import InvalidInputError
from symposia.export.transcript import Entry, Participant, RunTranscript
from symposia.storage.storable import unstorable

Path = tuple[str | int, ...]


def _strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string in a JSON value (keys too), with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, (*path, key))
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _message(entry: Entry) -> Message:
    """The entry as a message with a new id (the document's is the other server's)."""
    usage = entry.usage
    return Message(
        **entry.model_dump(exclude={"id", "status", "usage"}),
        status=MessageStatus(entry.status),
        usage=TurnUsage(**usage.model_dump()) if usage is not None else None,
    )


def _check(document: RunTranscript) -> None:
    """Refer only to bots the document has, and hold no text storage would have to alter
    (U+0000, unpaired surrogates), as every other route refuses it: a 422 naming the
    field otherwise."""
    for path, text in _strings(document.model_dump(mode="python")):
        if unstorable(text):
            raise InvalidInputError(
                "must not contain U+0000 (NUL) or unpaired surrogate characters",
                ".".join(str(part) for part in path),
            )
    bots = len(document.bots)
    if not bots:
        raise InvalidInputError("a run needs at least one bot", "bots")
    for index, entry in enumerate(document.messages):
        if entry.bot_index is not None and not 0 <= entry.bot_index < bots:
            raise InvalidInputError(
                f"bot_index {entry.bot_index} is not one of the {bots} bots",
                f"messages.{index}.bot_index",
            )
    if document.start_bots is not None and len(document.start_bots) != bots:
        raise InvalidInputError(
            f"start_bots has {len(document.start_bots)} bots, bots has {bots}", "start_bots"
        )
    for index, edit in enumerate(document.edits):
        if edit.bot >= bots:
            raise InvalidInputError(
                f"bot {edit.bot} is not one of the {bots} bots", f"edits.{index}.bot"
            )


def _bot(participant: Participant) -> BotConfig:
    return BotConfig(**{**participant.model_dump(), "fallbacks": tuple(participant.fallbacks)})


def run_from_transcript(document: RunTranscript, *, owner: str | None) -> Run:
    """The run the document describes, finished, owned by `owner`, with fresh ids."""
    _check(document)
    status = RunStatus(document.status)
    return Run(
        topic=document.topic,
        bots=[_bot(bot) for bot in document.bots],
        start_bots=(
            [_bot(bot) for bot in document.start_bots] if document.start_bots is not None else None
        ),
        max_turns=document.max_turns,
        strategy=document.policy,
        status=status if status.finished else RunStatus.INTERRUPTED,
        messages=[_message(entry) for entry in document.messages],
        error=document.error,
        error_message=document.error_message,
        stop_reason=document.stop_reason,
        owner=owner,
        id=new_id(),
        created_at=utcnow(),
        started_at=document.started_at,
        finished_at=document.finished_at or utcnow(),
        policy_config=document.policy_config,
        policy_state=document.policy_state,
        termination=document.termination,
        ended_by=document.ended_by,
        on_human_timeout=document.on_human_timeout,
        edits=[
            BotEdit(id=0, bot=edit.bot, changes=edit.changes, at=edit.at, turn=edit.turn)
            for edit in document.edits
        ],
    )

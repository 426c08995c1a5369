"""Build the structured transcript (export.transcript) from a Run or a Conversation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from symposia.domain.models import BotConfig, BotEdit, Conversation, Message, Run
from symposia.export.transcript import (
    Branch,
    ConversationTranscript,
    Edit,
    Entry,
    PanelOut,
    Participant,
    RunTranscript,
)


def entry_of(message: Message, routing: dict[str, Any] | None = None) -> Entry:
    """The message as the API shows it (`Message.to_dict`), typed; `routing` where a
    supervisor chose its speaker."""
    view = message.to_dict()
    # A transcript is the conversation as it reads: a regenerated question's earlier
    # answers (`alternatives`) are not part of it.
    view.pop("alternatives", None)
    if routing is not None and "routing" not in view:
        view["routing"] = routing
    return Entry.model_validate(view)


def _choices(run: Run) -> dict[int, dict[str, Any]]:
    """The `selector` policy's choice of each turn's speaker, as a panel's routing reads:
    agent, reason (the supervisor's answer), attempts, fallback, model."""
    model = run.policy_config.get("model")
    return {
        choice["turn"]: {
            "agent": choice["name"],
            "reason": choice["answer"],
            "attempts": choice["attempts"],
            "fallback": choice["fallback"],
            "model": model,
        }
        for choice in run.policy_state.get("choices", [])
    }


def _participant(bot: BotConfig) -> Participant:
    return Participant(**bot.to_dict())


def _edit(edit: BotEdit, bots: Sequence[BotConfig]) -> Edit:
    name = bots[edit.bot].name if 0 <= edit.bot < len(bots) else None
    return Edit(bot=edit.bot, bot_name=name, changes=edit.changes, at=edit.at, turn=edit.turn)


def run_transcript(run: Run, branches: Sequence[dict[str, Any]] = ()) -> RunTranscript:
    """The run as it stands (finished or not), with the runs branched from it."""
    choices = _choices(run)
    return RunTranscript(
        id=run.id,
        topic=run.topic,
        status=run.status.value,
        policy=run.strategy,
        strategy=run.strategy,
        policy_config=run.policy_config,
        policy_state=run.policy_state,
        termination=run.termination,
        max_turns=run.max_turns,
        turn_count=run.turn_count,
        on_human_timeout=run.on_human_timeout,
        awaiting_until=run.awaiting_until,
        ended_by=run.ended_by,
        stop_reason=run.stop_reason,
        error=run.error,
        error_message=run.error_message,
        verdict=run.policy_state.get("verdict"),
        moderation=run.policy_state.get("moderation"),
        parent_id=run.parent_id,
        branch_turn=run.branch_turn,
        branches=[Branch(**branch) for branch in branches],
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        bots=[_participant(bot) for bot in run.bots],
        start_bots=(
            [_participant(bot) for bot in run.start_bots] if run.start_bots is not None else None
        ),
        edits=[_edit(edit, run.bots) for edit in run.edits],
        messages=[_run_entry(message, choices) for message in said_order(run.messages)],
    )


def said_order(messages: Sequence[Message]) -> list[Message]:
    """The run's messages in the order they were said. A person's message is stored when it
    is said, maybe while a turn was under way, whose message is stored only when it ends:
    each person's message waits for the turns before the one that first saw it (its
    `turn`). Turns keep their stored order (a round's may end in any)."""
    ordered: list[Message] = []
    waiting: list[Message] = []
    for message in messages:
        if message.bot_index is None and message.role == "user" and message.turn is not None:
            waiting.append(message)
            continue
        if waiting and message.turn is not None:
            turn = message.turn
            ordered += [said for said in waiting if (said.turn or 0) <= turn]
            waiting = [said for said in waiting if (said.turn or 0) > turn]
        ordered.append(message)
    return ordered + waiting


def _run_entry(message: Message, choices: dict[int, dict[str, Any]]) -> Entry:
    routing = None
    if message.bot_index is not None and message.turn is not None:
        routing = choices.get(message.turn)
    return entry_of(message, routing)


def conversation_transcript(
    conversation: Conversation, messages: Sequence[Message]
) -> ConversationTranscript:
    """The conversation's settings (its panel, if any) and every message."""
    panel = conversation.panel
    return ConversationTranscript(
        id=conversation.id,
        title=conversation.title,
        default_model=conversation.default_model,
        system_prompt=conversation.system_prompt,
        panel=PanelOut(**panel.to_dict()) if panel is not None else None,
        tools=conversation.tools,
        message_count=conversation.message_count,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        started_at=messages[0].created_at if messages else None,
        finished_at=(messages[-1].completed_at or messages[-1].created_at) if messages else None,
        messages=[entry_of(message) for message in messages],
    )

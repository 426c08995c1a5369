"""Rows to domain objects and back: the one place that knows both shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from symposia.domain.models import (
    BotConfig,
    Conversation,
    Message,
    MessageStatus,
    Panel,
    ReplyRecord,
    ReplyStatus,
    Run,
    RunStatus,
    TurnUsage,
)
from symposia.storage.tables import ConversationRow, MessageRow, ReplyRow, RunBotRow, RunRow


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def message_row(
    message: Message, seq: int, *, run_id: str | None = None, conversation_id: str | None = None
) -> MessageRow:
    usage = message.usage
    return MessageRow(
        id=message.id,
        run_id=run_id,
        conversation_id=conversation_id,
        seq=seq,
        role=message.role,
        author=message.author,
        content=message.content,
        model=message.model,
        status=message.status.value,
        bot_index=message.bot_index,
        turn=message.turn,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        usage_estimated=usage.estimated if usage else None,
        ttft_ms=usage.time_to_first_token_ms if usage else None,
        total_ms=usage.total_ms if usage else None,
        created_at=message.created_at,
        completed_at=message.completed_at,
        round=message.round,
        cost_usd=message.cost_usd,
        start_event=message.start_event,
        complete_event=message.complete_event,
        routing=message.routing,
        tool_calls=message.tool_calls,
        tool_call_id=message.tool_call_id,
        alternatives=message.alternatives,
        tool_steps=message.tool_steps,
        finish_reason=message.finish_reason,
    )


def message_of(row: MessageRow) -> Message:
    usage = None
    if row.prompt_tokens is not None or row.completion_tokens is not None:
        usage = TurnUsage(
            prompt_tokens=row.prompt_tokens or 0,
            completion_tokens=row.completion_tokens or 0,
            estimated=bool(row.usage_estimated),
            time_to_first_token_ms=row.ttft_ms,
            total_ms=row.total_ms,
        )
    created = aware(row.created_at)
    assert created is not None
    return Message(
        role=row.role,  # type: ignore[arg-type]
        author=row.author,
        content=row.content,
        model=row.model,
        status=MessageStatus(row.status),
        bot_index=row.bot_index,
        turn=row.turn,
        usage=usage,
        id=row.id,
        created_at=created,
        completed_at=aware(row.completed_at),
        start_event=row.start_event,
        complete_event=row.complete_event,
        round=row.round,
        cost_usd=row.cost_usd,
        routing=row.routing,
        tool_calls=row.tool_calls,
        tool_call_id=row.tool_call_id,
        alternatives=row.alternatives,
        tool_steps=row.tool_steps,
        finish_reason=row.finish_reason,
    )


def bot_row(
    run_id: str, position: int, bot: BotConfig, start: BotConfig | None = None
) -> RunBotRow:
    """The bot's row; `start` (the bot's settings as the run started) is written when the
    run is stored, and never by an edit."""
    return RunBotRow(
        run_id=run_id,
        position=position,
        name=bot.name,
        model=bot.model,
        system_prompt=bot.system_prompt,
        temperature=bot.temperature,
        max_tokens=bot.max_tokens,
        fallbacks=list(bot.fallbacks),
        kind=bot.kind,
        description=bot.description,
        start=start.to_dict() if start is not None else None,
        tools=list(bot.tools) or None,
    )


def bot_config(data: dict[str, Any]) -> BotConfig:
    """A bot from its `to_dict` form (a stored start)."""
    return BotConfig(**{**data, "fallbacks": tuple(data.get("fallbacks") or ())})


def bot_of(row: RunBotRow) -> BotConfig:
    return BotConfig(
        name=row.name,
        model=row.model,
        system_prompt=row.system_prompt,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        fallbacks=tuple(row.fallbacks or ()),
        kind=row.kind,  # type: ignore[arg-type]
        description=row.description or "",
        tools=tuple(row.tools or ()),
    )


def run_row(run: Run) -> RunRow:
    return RunRow(
        id=run.id,
        owner=run.owner,
        topic=run.topic,
        strategy=run.strategy,
        max_turns=run.max_turns,
        status=run.status.value,
        error=run.error,
        error_message=run.error_message,
        stop_reason=run.stop_reason,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        policy_config=run.policy_config or None,
        policy_state=run.policy_state or None,
        termination=run.termination,
        ended_by=run.ended_by,
        parent_id=run.parent_id,
        branch_turn=run.branch_turn,
        on_human_timeout=run.on_human_timeout,
    )


def run_of(row: RunRow, bots: list[BotConfig], messages: list[Message]) -> Run:
    created = aware(row.created_at)
    assert created is not None
    return Run(
        topic=row.topic,
        bots=bots,
        max_turns=row.max_turns,
        strategy=row.strategy,
        status=RunStatus(row.status),
        messages=messages,
        error=row.error,
        error_message=row.error_message,
        stop_reason=row.stop_reason,
        owner=row.owner,
        id=row.id,
        created_at=created,
        started_at=aware(row.started_at),
        finished_at=aware(row.finished_at),
        done_event=row.done_event,
        takeovers=row.takeovers,
        stop_requested=row.stop_requested,
        open_turn_event=row.open_turn_event,
        open_turn_bot=row.open_turn_bot,
        last_event=row.last_event,
        policy_config=row.policy_config or {},
        policy_state=row.policy_state or {},
        termination=row.termination,
        ended_by=row.ended_by,
        parent_id=row.parent_id,
        branch_turn=row.branch_turn,
        awaiting_until=aware(row.awaiting_until),
        on_human_timeout="skip" if row.on_human_timeout == "skip" else "end",
    )


def conversation_row(conversation: Conversation) -> ConversationRow:
    return ConversationRow(
        id=conversation.id,
        owner=conversation.owner,
        title=conversation.title,
        default_model=conversation.default_model,
        system_prompt=conversation.system_prompt,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        panel=conversation.panel.to_dict() if conversation.panel is not None else None,
        tools=conversation.tools,
    )


def conversation_of(row: ConversationRow, message_count: int = 0) -> Conversation:
    created, updated = aware(row.created_at), aware(row.updated_at)
    assert created is not None
    assert updated is not None
    return Conversation(
        default_model=row.default_model,
        title=row.title,
        system_prompt=row.system_prompt,
        owner=row.owner,
        id=row.id,
        created_at=created,
        updated_at=updated,
        message_count=message_count,
        panel=Panel.from_dict(row.panel) if row.panel else None,
        tools=row.tools or None,
    )


def reply_row(reply: ReplyRecord) -> ReplyRow:
    return ReplyRow(
        id=reply.id,
        conversation_id=reply.conversation_id,
        model=reply.model,
        status=reply.status.value,
        epoch=reply.epoch,
        instance_id=reply.instance_id,
        heartbeat_at=reply.heartbeat_at,
        message_id=reply.message.id if reply.message is not None else None,
        error=reply.error,
        error_event=reply.error_event,
        done_event=reply.done_event,
        created_at=reply.created_at,
        finished_at=reply.finished_at,
        routing=reply.routing,
    )


def reply_of(row: ReplyRow, message: Message | None = None) -> ReplyRecord:
    created = aware(row.created_at)
    assert created is not None
    return ReplyRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        model=row.model,
        status=ReplyStatus(row.status),
        epoch=row.epoch,
        instance_id=row.instance_id,
        heartbeat_at=aware(row.heartbeat_at),
        message=message,
        error=row.error,
        error_event=row.error_event,
        done_event=row.done_event,
        created_at=created,
        finished_at=aware(row.finished_at),
        routing=row.routing,
    )


def message_of_dict(data: dict[str, Any]) -> Message:
    """A message back from its `to_dict` (a stored alternative answer)."""
    usage = data.get("usage")
    completed = data.get("completed_at")
    return Message(
        role=data["role"],
        author=data["author"],
        content=data["content"],
        model=data.get("model"),
        status=MessageStatus(data["status"]),
        bot_index=data.get("bot_index"),
        turn=data.get("turn"),
        usage=TurnUsage(**usage) if usage else None,
        id=data["id"],
        created_at=datetime.fromisoformat(data["created_at"]),
        completed_at=datetime.fromisoformat(completed) if completed else None,
        round=data.get("round"),
        cost_usd=data.get("cost_usd"),
        routing=data.get("routing"),
    )

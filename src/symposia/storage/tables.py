"""The schema, as SQLAlchemy 2 declarative tables. Migrations live in `migrations/`.

Text and JSON columns clean what they receive (see `storable`), so no write fails on a
character a database cannot hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from symposia.storage.storable import StorableJSON, StorableString, StorableText

ID = StorableString(32)


class Base(DeclarativeBase):
    pass


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner: Mapped[str | None] = mapped_column(StorableString(200), index=True)
    title: Mapped[str | None] = mapped_column(StorableString(500))
    default_model: Mapped[str] = mapped_column(StorableString(200))
    system_prompt: Mapped[str | None] = mapped_column(StorableText())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Its supervisor's specialists (`Panel.to_dict`), when it has a panel.
    panel: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    # Function tools its models may call.
    tools: Mapped[list[Any] | None] = mapped_column(StorableJSON())


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner: Mapped[str | None] = mapped_column(StorableString(200), index=True)
    topic: Mapped[str] = mapped_column(StorableText())
    strategy: Mapped[str] = mapped_column(StorableString(40))
    max_turns: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(StorableString(20), index=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    error_message: Mapped[str | None] = mapped_column(StorableText())
    stop_reason: Mapped[str | None] = mapped_column(StorableText())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Which server process runs it, and when that process last said it was alive.
    instance_id: Mapped[str | None] = mapped_column(StorableString(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Id of the stream's `done` event, so a stream rebuilt from storage ends where it did.
    done_event: Mapped[int | None] = mapped_column(Integer)
    # The fencing token: bumped by each claim, checked by every write of the run's owner.
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Times another process took the run over from a dead (or departing) owner; capped.
    takeovers: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # A stop asked of whichever process holds the lease (it polls for it).
    stop_requested: Mapped[str | None] = mapped_column(StorableText())
    # Id of the `turn_start` of the turn being generated: tells a new owner a turn was cut.
    open_turn_event: Mapped[int | None] = mapped_column(Integer)
    open_turn_bot: Mapped[int | None] = mapped_column(Integer)  # and who was speaking
    # Id of the last event a departing owner wrote (its `interrupted`), so a stream that
    # lived only in that process's memory goes on numbering after it.
    last_event: Mapped[int | None] = mapped_column(Integer)
    # The turn policy's settings and its state (all of it: a run taken over goes on under
    # the same state), and the conditions that end the run; `ended_by` names the one that did.
    policy_config: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    policy_state: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    termination: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    ended_by: Mapped[str | None] = mapped_column(StorableText())
    # A branch: the run it was branched from, and after how many of its turns.
    parent_id: Mapped[str | None] = mapped_column(StorableString(32))
    branch_turn: Mapped[int | None] = mapped_column(Integer)
    # While `awaiting_input`: when the wait times out.
    awaiting_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_human_timeout: Mapped[str | None] = mapped_column(StorableString(10))  # skip | end


class RunBotRow(Base):
    __tablename__ = "run_bots"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(200))
    model: Mapped[str] = mapped_column(StorableString(200))
    system_prompt: Mapped[str] = mapped_column(StorableText())
    temperature: Mapped[float] = mapped_column(Float)
    max_tokens: Mapped[int] = mapped_column(Integer)
    fallbacks: Mapped[list[str]] = mapped_column(StorableJSON())
    kind: Mapped[str] = mapped_column(StorableString(20), default="bot", server_default="bot")
    description: Mapped[str] = mapped_column(StorableText(), default="", server_default="")
    # The bot's settings when the run started (`BotConfig.to_dict`), never edited after;
    # None for a run stored before they were kept.
    start: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    # The MCP servers or `server.tool`s the bot may call.
    tools: Mapped[list[str] | None] = mapped_column(StorableJSON())


class RunTurnRow(Base):
    """A bot's turn of a run, recorded before its first model call (`TurnRecord`)."""

    __tablename__ = "run_turns"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    turn: Mapped[int] = mapped_column(Integer, primary_key=True)
    round: Mapped[int | None] = mapped_column(Integer)
    bot_index: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(StorableString(200))
    epoch: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(StorableString(12))
    start_event: Mapped[int | None] = mapped_column(Integer)
    complete_event: Mapped[int | None] = mapped_column(Integer)
    prompt_chars: Mapped[int | None] = mapped_column(Integer)


class RunBotEditRow(Base):
    """Every mid-run change of a bot, so a transcript can say who spoke with what config."""

    __tablename__ = "run_bot_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(StorableJSON())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The `bot_updated` event that announced it, and the turn it took effect from.
    event: Mapped[int | None] = mapped_column(Integer)
    turn: Mapped[int | None] = mapped_column(Integer)


class MessageRow(Base):
    """A message of a conversation or of a run (exactly one of the two)."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("(conversation_id IS NULL) <> (run_id IS NULL)", name="one_parent"),
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
        Index("ix_messages_run_seq", "run_id", "seq"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(StorableString(20))
    author: Mapped[str] = mapped_column(StorableString(200))
    content: Mapped[str] = mapped_column(StorableText())
    model: Mapped[str | None] = mapped_column(StorableString(200))
    status: Mapped[str] = mapped_column(StorableString(20))
    bot_index: Mapped[int | None] = mapped_column(Integer)
    turn: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    usage_estimated: Mapped[bool | None] = mapped_column(Boolean)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    round: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    # Ids of the turn's `turn_start` and `turn_complete` events in its stream.
    start_event: Mapped[int | None] = mapped_column(Integer)
    complete_event: Mapped[int | None] = mapped_column(Integer)
    # A panel's routing of the question this message answers.
    routing: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    # The tool calls an answer asked for; the call a tool result answers.
    tool_calls: Mapped[list[Any] | None] = mapped_column(StorableJSON())
    tool_call_id: Mapped[str | None] = mapped_column(StorableString(128))
    # On a regenerated question: its earlier answers (messages as dicts), oldest first.
    alternatives: Mapped[list[Any] | None] = mapped_column(StorableJSON())
    # The MCP tool calls Symposia ran during the turn, with their results and event ids.
    tool_steps: Mapped[list[Any] | None] = mapped_column(StorableJSON())
    # Why the model stopped (`stop`, `length`, `tool_calls`): a rebuilt stream tells it.
    finish_reason: Mapped[str | None] = mapped_column(StorableString(40))


class ReplyRow(Base):
    """A conversation's reply stream: at most one `running` per conversation (the partial
    unique index), written by `instance_id` at lease `epoch` while its heartbeat is fresh."""

    __tablename__ = "replies"
    __table_args__ = (
        Index("ix_replies_conversation_created", "conversation_id", "created_at"),
        Index(
            "ux_replies_one_running",
            "conversation_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    # The user message answered; the stream is `reply-<id>`.
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(StorableString(200))
    status: Mapped[str] = mapped_column(StorableString(20))
    epoch: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[str | None] = mapped_column(StorableString(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str | None] = mapped_column(ID)
    error: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    error_event: Mapped[int | None] = mapped_column(Integer)
    done_event: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A panel's routing of the question (the stream's first event, `routing`).
    routing: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    # Stop asked (`POST /api/conversations/{id}/stop`) on a process that is not its writer.
    stop_requested: Mapped[bool | None] = mapped_column(Boolean)


class ApiKeyRow(Base):
    """An API key: only a SHA-256 of its secret is kept (keys are random, 256-bit)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(StorableString(32), primary_key=True)
    name: Mapped[str] = mapped_column(StorableString(200))
    secret_sha256: Mapped[str] = mapped_column(StorableString(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResponseRow(Base):
    """A stored answer of `POST /v1/responses` (`store`), for `GET /v1/responses/{id}` and
    for `previous_response_id` chains, whatever the provider: `input` holds the request's
    items and `body` the Response object as it was returned."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(StorableString(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(StorableString(200), index=True)
    previous_id: Mapped[str | None] = mapped_column(StorableString(64))
    input: Mapped[list[Any]] = mapped_column(StorableJSON())
    body: Mapped[dict[str, Any]] = mapped_column(StorableJSON())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKeyRow(Base):
    """A request sent with an `Idempotency-Key`: the first of its principal with that key
    claims the row (the primary key makes two workers racing resolve to one), and once it
    succeeded the row holds its answer, replayed to a retry for `IDEMPOTENCY_KEY_SECONDS`.
    `fingerprint` is a SHA-256 of the route and the request's body; `status` is null while
    the first request is in flight."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(StorableString(200), primary_key=True)
    key: Mapped[str] = mapped_column(StorableString(255), primary_key=True)
    route: Mapped[str] = mapped_column(StorableString(200))
    fingerprint: Mapped[str] = mapped_column(StorableString(64))
    status: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SessionRow(Base):
    """A browser session: the signed cookie carries only `id`, so deleting the row ends
    it (sign-out, `DELETE /api/sessions/{id}`, a credential that no longer holds)."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(StorableString(64), primary_key=True)
    principal: Mapped[str] = mapped_column(StorableString(200), index=True)
    kind: Mapped[str] = mapped_column(StorableString(20))
    name: Mapped[str] = mapped_column(StorableString(500))
    # The API key it was made with, or a fingerprint of the credential (the Basic user's
    # password hash, the OpenID issuer): a changed credential ends the session.
    key_id: Mapped[str | None] = mapped_column(StorableString(32))
    fingerprint: Mapped[str | None] = mapped_column(StorableString(64))
    csrf: Mapped[str] = mapped_column(StorableString(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The absolute cap; the idle end is last_seen + SESSION_MAX_AGE_SECONDS.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ToolApprovalRow(Base):
    """An MCP tool call waiting for (or given) its owner's decision: `subject` is the run
    (`run:{id}`) or conversation (`conversation:{id}`) whose turn asked it; `status` is
    `pending`, `approved` or `denied`. Stored, so any process can take the decision and
    the pending call outlives the process that asked."""

    __tablename__ = "tool_approvals"

    subject: Mapped[str] = mapped_column(StorableString(80), primary_key=True)
    call_id: Mapped[str] = mapped_column(StorableString(128), primary_key=True)
    stream_id: Mapped[str] = mapped_column(StorableString(80))
    agent: Mapped[str] = mapped_column(StorableString(200))
    server: Mapped[str] = mapped_column(StorableString(64))
    tool: Mapped[str] = mapped_column(StorableString(200))
    arguments: Mapped[str] = mapped_column(StorableText())
    status: Mapped[str] = mapped_column(StorableString(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(StorableString(200))


class KeyLimitRow(Base):
    """What a key may spend and use, and its budget's counters (database keys and the
    static keys of API_KEYS alike, by key id). Money is in nano-dollars (integers), so a
    reservation and its settlement add up exactly."""

    __tablename__ = "key_limits"

    key_id: Mapped[str] = mapped_column(StorableString(32), primary_key=True)
    max_budget_nanos: Mapped[int | None] = mapped_column(BigInteger)
    budget_period: Mapped[str | None] = mapped_column(StorableString(10))
    models: Mapped[list[str] | None] = mapped_column(StorableJSON())
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    max_parallel: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    meta: Mapped[dict[str, Any] | None] = mapped_column(StorableJSON())
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # The period the counters belong to (`governance.limits.period_index`): a reservation
    # in a later one starts `spent` from zero.
    period_index: Mapped[int] = mapped_column(Integer, default=0)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_nanos: Mapped[int] = mapped_column(BigInteger, default=0)


class KeyReservationRow(Base):
    """A worst case held against a key's budget while its call runs; `lease_until` (Unix
    seconds) is renewed by the process holding it, and a lapsed one is released."""

    __tablename__ = "key_reservations"

    id: Mapped[str] = mapped_column(StorableString(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(StorableString(32), index=True)
    amount_nanos: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(StorableString(64), index=True)
    lease_until: Mapped[float] = mapped_column(Float, index=True)


class UsageRow(Base):
    """One provider call: who, which model, where from, what it used and cost."""

    __tablename__ = "usage_ledger"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    principal: Mapped[str | None] = mapped_column(StorableString(200), index=True)
    key_id: Mapped[str | None] = mapped_column(StorableString(32), index=True)
    model: Mapped[str] = mapped_column(StorableString(200))
    provider_model: Mapped[str | None] = mapped_column(StorableString(200))
    surface: Mapped[str] = mapped_column(StorableString(40))
    run_id: Mapped[str | None] = mapped_column(StorableString(32))
    conversation_id: Mapped[str | None] = mapped_column(StorableString(32))
    response_id: Mapped[str | None] = mapped_column(StorableString(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    estimated: Mapped[bool] = mapped_column(Boolean)
    cost_nanos: Mapped[int | None] = mapped_column(BigInteger)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(StorableString(40))

"""Runs, bots and messages: the state a multi-agent conversation is made of."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
AgentKind = Literal["bot", "human"]
HumanTimeout = Literal["skip", "end"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    # Waiting for a person (an agent of kind `human`): no task, no lease, until they speak
    # or the wait times out.
    AWAITING_INPUT = "awaiting_input"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.AWAITING_INPUT)


class ReplyStatus(StrEnum):
    """A conversation reply's state: `running` while some process generates it, then how
    its stream ended (its `done` event's `status`)."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    ERROR = "error"


@dataclass(slots=True)
class BotConfig:
    """One participant of a run. `model` is always the full `provider/model` name."""

    name: str
    model: str
    system_prompt: str
    temperature: float = 0.7
    max_tokens: int = 256
    fallbacks: tuple[str, ...] = ()
    # `bot` (a model speaks) or `human` (the run waits for that person); `description`
    # tells a supervisor what the agent is for.
    kind: AgentKind = "bot"
    description: str = ""
    # MCP servers (`time`) or single tools (`time.get_current_time`) the bot may call.
    tools: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "fallbacks": list(self.fallbacks),
            "kind": self.kind,
            "description": self.description,
            **({"tools": list(self.tools)} if self.tools else {}),
        }


@dataclass(slots=True)
class TurnUsage:
    """Tokens and latency of one model call; `estimated` when the provider reported none."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    time_to_first_token_ms: float | None = None
    total_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated": self.estimated,
            "time_to_first_token_ms": self.time_to_first_token_ms,
            "total_ms": self.total_ms,
        }


@dataclass(slots=True)
class Message:
    """One message of a transcript. `bot_index` is None for the user and the topic."""

    role: Role
    author: str
    content: str
    model: str | None = None
    status: MessageStatus = MessageStatus.COMPLETE
    bot_index: int | None = None
    turn: int | None = None
    usage: TurnUsage | None = None
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    completed_at: datetime | None = None
    # Ids (seqs) of the turn's `turn_start` and `turn_complete` events in its stream, so a
    # stream rebuilt from storage numbers its events as the live one did.
    start_event: int | None = None
    complete_event: int | None = None
    # The policy's round this turn belongs to (`rounds`, `moderated`), and what it cost.
    round: int | None = None
    cost_usd: float | None = None
    # Why the model stopped (`stop`, `length`, `tool_calls`), told in `turn_complete`, live
    # and in a stream rebuilt from storage alike (None for turns stored before 0019).
    finish_reason: str | None = None
    # In a panel conversation, how the supervisor routed the question this answers.
    routing: dict[str, Any] | None = None
    # The calls the model asked for (`id`, `name`, `arguments`), and on a `tool`
    # message, the call whose result it is.
    tool_calls: list[dict[str, str]] | None = None
    tool_call_id: str | None = None
    # On a regenerated question: its earlier answers (as `to_dict` gives them), oldest
    # first; the answer that follows it is the one chosen (`POST .../regenerate`).
    alternatives: list[dict[str, Any]] | None = None
    # The MCP tool calls Symposia ran during the turn: `id`, `server`, `tool`,
    # `arguments`, `content`, `is_error`, `duration_ms`, and their events' ids.
    tool_steps: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """`routing` only where there was one (a panel conversation's answers)."""
        view: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "author": self.author,
            "content": self.content,
            "model": self.model,
            "status": self.status.value,
            "bot_index": self.bot_index,
            "turn": self.turn,
            "round": self.round,
            "usage": self.usage.to_dict() if self.usage else None,
            "cost_usd": self.cost_usd,
            "created_at": self.created_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }
        if self.routing is not None:
            view["routing"] = self.routing
        if self.tool_calls:
            view["tool_calls"] = self.tool_calls
        if self.tool_call_id is not None:
            view["tool_call_id"] = self.tool_call_id
        if self.alternatives:
            view["alternatives"] = self.alternatives
        if self.tool_steps:
            view["tool_steps"] = [
                {k: v for k, v in step.items() if not k.endswith("_event")}
                for step in self.tool_steps
            ]
        return view


@dataclass(slots=True)
class BotEdit:
    """A change to bot `bot` made while the run went on; `turn` is the first turn it took
    effect in and `event` the id of the `bot_updated` event that said so (None until the
    run's owner announced it, before its next turn)."""

    id: int
    bot: int
    changes: dict[str, Any]
    at: datetime
    event: int | None = None
    turn: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "changes": self.changes,
            "at": self.at.isoformat(),
            "turn": self.turn,
        }


class TurnState(StrEnum):
    """Where a turn of a run is: `claimed` before its first model call, `streaming` once its
    `turn_start` is written, then `complete` or `partial` (cut: by a stop, a failure or the
    loss of its writer). A claimed or streaming turn is never asked of a model again."""

    CLAIMED = "claimed"
    STREAMING = "streaming"
    COMPLETE = "complete"
    PARTIAL = "partial"

    @property
    def open(self) -> bool:
        return self in (TurnState.CLAIMED, TurnState.STREAMING)


@dataclass(slots=True)
class TurnRecord:
    """A bot's turn of a run as the database keeps it, written before the turn's first model
    call (at the owner's lease `epoch`), so whoever resumes the run knows every turn that
    was taken, even when the event log that streamed it is gone: its number, round and
    speaker never move, and it is closed (as partial) rather than generated again.
    `start_event`/`complete_event` are the ids of its `turn_start`/`turn_complete`, once
    written; `prompt_chars` is what the model was sent (for a cut turn's usage estimate)."""

    turn: int
    bot: int
    model: str
    epoch: int
    round: int | None = None
    state: TurnState = TurnState.CLAIMED
    start_event: int | None = None
    complete_event: int | None = None
    prompt_chars: int | None = None


@dataclass(slots=True)
class Run:
    """A topic, 2 to 8 bots taking turns on it, and what they said."""

    topic: str
    bots: list[BotConfig]
    max_turns: int
    strategy: str = "round_robin"
    status: RunStatus = RunStatus.PENDING
    messages: list[Message] = field(default_factory=list)
    error: dict[str, Any] | None = None
    error_message: str | None = None
    stop_reason: str | None = None
    owner: str | None = None
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Id (seq) of the run stream's last event, `done`, once it was sent.
    done_event: int | None = None
    # The lease's story (see storage.sql_runs): takeovers so far, a stop asked of the
    # owner, the `turn_start` id of a turn under way, the last id a departing owner wrote.
    takeovers: int = 0
    stop_requested: str | None = None
    open_turn_event: int | None = None
    open_turn_bot: int | None = None
    last_event: int | None = None
    # The policy (`strategy` names it), its settings and state; the termination conditions
    # and the name of the one that ended the run; the branch parent; a human wait's end.
    policy_config: dict[str, Any] = field(default_factory=dict)
    policy_state: dict[str, Any] = field(default_factory=dict)
    termination: dict[str, Any] | None = None
    ended_by: str | None = None
    parent_id: str | None = None
    branch_turn: int | None = None
    awaiting_until: datetime | None = None
    on_human_timeout: HumanTimeout = "end"
    edits: list[BotEdit] = field(default_factory=list)
    # Each bot's settings as the run started (before any edit); None when they were not
    # stored (a run from before they were kept). A new run stores its `bots` as its start.
    start_bots: list[BotConfig] | None = None
    # Set by listings that load no transcript, so `turn_count` still answers.
    counted_turns: int | None = None

    @property
    def turn_count(self) -> int:
        """Turns taken so far, a partial one included."""
        if self.counted_turns is not None and not self.messages:
            return self.counted_turns
        return sum(1 for message in self.messages if message.bot_index is not None)


NAME_MAX = 64  # the longest name of a bot, an agent or a person speaking in a run
SUPERVISOR = "supervisor"  # a panel's routing answer for "the supervisor answers itself"


@dataclass(frozen=True, slots=True)
class PanelAgent:
    """A specialist of a panel: the supervisor routes to it by `name` and `description`."""

    name: str
    description: str
    model: str
    system_prompt: str = ""
    temperature: float | None = None
    tools: tuple[str, ...] = ()  # MCP servers or `server.tool`s it may call

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            **({"tools": list(self.tools)} if self.tools else {}),
        }


@dataclass(frozen=True, slots=True)
class Panel:
    """A conversation's supervisor and specialists: each user message is routed by the
    supervisor (the conversation's `default_model`) to one agent, or answered by the
    supervisor itself. `prompt` None is the documented default routing prompt; `fallback`
    answers when no valid choice comes within `max_attempts`."""

    agents: tuple[PanelAgent, ...]
    prompt: str | None = None
    max_attempts: int = 3
    fallback: str = SUPERVISOR

    def agent(self, name: str) -> PanelAgent | None:
        return next((a for a in self.agents if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": [agent.to_dict() for agent in self.agents],
            "prompt": self.prompt,
            "max_attempts": self.max_attempts,
            "fallback": self.fallback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Panel:
        return cls(
            agents=tuple(
                PanelAgent(**{**agent, "tools": tuple(agent.get("tools") or ())})
                for agent in data["agents"]
            ),
            prompt=data.get("prompt"),
            max_attempts=int(data.get("max_attempts", 3)),
            fallback=str(data.get("fallback", SUPERVISOR)),
        )


@dataclass(slots=True)
class Conversation:
    """One person talking with one model at a time; `default_model` answers unless a
    message names another. With a `panel`, `default_model` is its supervisor."""

    default_model: str
    title: str | None = None
    system_prompt: str | None = None
    owner: str | None = None
    panel: Panel | None = None
    # Function tools its models may call (OpenAI's chat format), which the client runs,
    # and MCP servers or `server.tool`s (strings), which Symposia runs (docs/tools.md).
    tools: list[dict[str, Any] | str] | None = None
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    message_count: int = 0


@dataclass(slots=True)
class ReplyRecord:
    """One reply stream of a conversation, as the database keeps it: which process writes
    it (`instance_id`, at lease `epoch`) and, once it ended, where its events sat, so its
    stream can be rebuilt with the ids it had live. `id` is the user message it answers;
    the stream is `reply-<id>`."""

    id: str
    conversation_id: str
    model: str
    status: ReplyStatus = ReplyStatus.RUNNING
    epoch: int = 1
    instance_id: str | None = None
    heartbeat_at: datetime | None = None
    # The saved reply (none when nothing was said, or it could not be saved).
    message: Message | None = None
    # The failure its `error` event showed, and that event's id.
    error: dict[str, Any] | None = None
    error_event: int | None = None
    done_event: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    # A panel's routing of the question (then the stream's first event is `routing`).
    routing: dict[str, Any] | None = None

    @property
    def stream_id(self) -> str:
        return reply_stream_id(self.id)

    @property
    def author(self) -> str:
        """Who answers: the agent the panel routed to, else the assistant."""
        return str(self.routing["agent"]) if self.routing else "assistant"


def reply_stream_id(question_id: str) -> str:
    """The event stream of the reply to user message `question_id`."""
    return f"reply-{question_id}"

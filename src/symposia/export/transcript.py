"""The structured transcript every export reads: one typed, versioned document.

A run and a conversation become one of two shapes, joined by `kind`. The JSON export is
this model as JSON (its JSON Schema is `transcript_schema()`, committed as
docs/transcript.schema.json); Markdown and PDF are drawn from it, so all three carry the
same facts. `FORMAT` and `VERSION` name the document: a change that an importer of an
older version would misread raises `VERSION`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from symposia.domain.models import NAME_MAX

FORMAT: Literal["symposia.transcript"] = "symposia.transcript"
VERSION: Literal[1] = 1


def _not_a_number(value: Any) -> Any:
    """pydantic's lax datetime takes a number as Unix time; the schema says a string."""
    if isinstance(value, int | float):
        raise ValueError("a time is an ISO 8601 string, not a number")
    return value


# An ISO 8601 string in JSON (strict models take only datetime objects otherwise).
Time = Annotated[datetime, Field(strict=False), BeforeValidator(_not_a_number)]
# Counts, turns and indexes are stored in 32-bit columns (PostgreSQL's INTEGER): a larger
# number in an imported document is refused by name, not turned into a database error.
INT32_MAX = 2**31 - 1
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _absent(value: Any) -> bool:
    return value is None


def _left_out_when_none() -> Any:
    """A field left out of the JSON when it has nothing to say (a panel's routing, tool
    calls), as the API's message views do."""
    return Field(default=None, exclude_if=_absent)


class _Strict(BaseModel):
    """Unknown fields are refused, so an import never drops what it was given, and values
    are not coerced (a "3" is not a number); times are ISO 8601 strings."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Usage(_Strict):
    """Tokens of one model call; `estimated` when the provider reported none and they were
    counted from the text (then the cost is an estimate too)."""

    prompt_tokens: Count
    completion_tokens: Count
    estimated: bool = False
    time_to_first_token_ms: float | None = None
    total_ms: float | None = None


class ToolStep(_Strict):
    """An MCP tool call Symposia ran during the turn, with its result (docs/tools.md);
    `approval` when a person had to decide."""

    id: str
    server: str
    tool: str
    function: str = ""
    arguments: str
    content: str
    is_error: bool
    duration_ms: float
    approval: Literal["approved", "denied"] | None = _left_out_when_none()
    approval_until: str | None = _left_out_when_none()


class Entry(_Strict):
    """One message: a bot's turn (`bot_index` set), a person's words, the topic or a tool
    result. `cost_usd` is the price table's rate times `usage`."""

    id: str
    role: Literal["system", "user", "assistant", "tool"]
    author: str
    content: str
    model: str | None = None
    status: Literal["complete", "partial", "error"] = "complete"
    bot_index: Count | None = None
    turn: Count | None = None
    round: Count | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    created_at: Time
    completed_at: Time | None = None
    # A panel's routing of the question this answers: agent, reason, attempts, fallback.
    routing: dict[str, Any] | None = _left_out_when_none()
    tool_calls: list[dict[str, str]] | None = _left_out_when_none()
    tool_call_id: str | None = _left_out_when_none()
    tool_steps: list[ToolStep] | None = _left_out_when_none()


class Participant(_Strict):
    """A run's bot (or person) with its settings: in `RunTranscript.bots` as they were
    when the transcript was taken, in `RunTranscript.start_bots` as the run started;
    `RunTranscript.edits` says what changed on the way and from which turn."""

    # As POST /api/run takes a bot, so that an imported run can be branched.
    name: str = Field(min_length=1, max_length=NAME_MAX)
    model: str
    system_prompt: str
    temperature: float = Field(ge=0.0, le=2.0)
    max_tokens: int = Field(ge=1, le=INT32_MAX)
    fallbacks: list[str] = Field(default_factory=list)
    kind: Literal["bot", "human"] = "bot"
    description: str = ""
    tools: list[str] | None = _left_out_when_none()  # MCP servers or tools it may call


class Edit(_Strict):
    """A change to bot `bot` made while the run went on; `turn` is the first turn it took
    effect in (None: made after the last turn)."""

    bot: Count
    bot_name: str | None = None
    changes: dict[str, Any]
    at: Time
    turn: Count | None = None


class Branch(_Strict):
    id: str
    branch_turn: Count | None = None


class RunTranscript(_Strict):
    """A multi-agent run: its settings, participants, edits, turns and how it ended.
    `strategy` repeats `policy` (its former name); `verdict` and `moderation` repeat the
    parts of `policy_state` a reader looks for."""

    format: Literal["symposia.transcript"] = FORMAT
    version: Literal[1] = VERSION
    kind: Literal["run"] = "run"
    id: str
    topic: str
    status: Literal[
        "pending", "running", "completed", "cancelled", "error", "interrupted", "awaiting_input"
    ]
    policy: str
    strategy: str
    policy_config: dict[str, Any] = Field(default_factory=dict)
    policy_state: dict[str, Any] = Field(default_factory=dict)
    termination: dict[str, Any] | None = None
    max_turns: Count
    turn_count: Count
    on_human_timeout: Literal["skip", "end"] = "end"
    awaiting_until: Time | None = None
    ended_by: str | None = None
    stop_reason: str | None = None
    error: dict[str, Any] | None = None
    error_message: str | None = None
    verdict: dict[str, Any] | None = None
    moderation: Any = None
    parent_id: str | None = None
    branch_turn: Count | None = None
    branches: list[Branch] = Field(default_factory=list)
    created_at: Time
    started_at: Time | None = None
    finished_at: Time | None = None
    bots: list[Participant] = Field(min_length=2, max_length=8)
    # The same bots as the run started (before any edit); left out for a run stored
    # before start settings were kept.
    start_bots: list[Participant] | None = Field(
        default=None, min_length=2, max_length=8, exclude_if=_absent
    )
    edits: list[Edit] = Field(default_factory=list)
    messages: list[Entry] = Field(default_factory=list)


class PanelAgentOut(_Strict):
    name: str
    description: str
    model: str
    system_prompt: str = ""
    temperature: float | None = None


class PanelOut(_Strict):
    """A panel: the supervisor (`default_model`) routes each question to one agent."""

    agents: list[PanelAgentOut]
    prompt: str | None = None
    max_attempts: int = 3
    fallback: str = "supervisor"


class ConversationTranscript(_Strict):
    """A person's conversation with models: its settings and every message, a panel's
    answers with their `routing`. `started_at`/`finished_at` are its first and last
    message's times."""

    format: Literal["symposia.transcript"] = FORMAT
    version: Literal[1] = VERSION
    kind: Literal["conversation"] = "conversation"
    id: str
    title: str | None = None
    default_model: str
    system_prompt: str | None = None
    panel: PanelOut | None = None
    tools: list[dict[str, Any] | str] | None = None
    message_count: Count
    created_at: Time
    updated_at: Time
    started_at: Time | None = None
    finished_at: Time | None = None
    messages: list[Entry] = Field(default_factory=list)


Transcript = Annotated[RunTranscript | ConversationTranscript, Field(discriminator="kind")]
TRANSCRIPT: TypeAdapter[RunTranscript | ConversationTranscript] = TypeAdapter(Transcript)


def transcript_schema() -> dict[str, Any]:
    """The JSON Schema of an exported document (what the JSON export writes)."""
    schema = TRANSCRIPT.json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{FORMAT} v{VERSION}",
        **schema,
    }

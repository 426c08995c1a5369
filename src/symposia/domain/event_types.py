"""The event union: one tagged type per event a stream carries, each built here only.

Producers (turns, the run loop, conversation replies, the replay from storage) build a
payload and `emit` it (`events.emit`); the payload alone decides the wire data, so a
`turn_complete` looks the same whoever sends it. The schema is documented in `docs/events.md`.

A turn's events name their speaker: a `BotTurn` of a run (turn, bot, name) or the `Reply`
to a conversation's user message (conversation_id, in_reply_to, name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from symposia.domain.events import Event
from symposia.domain.models import Message, RunStatus

ReplyOutcome = Literal["completed", "cancelled", "error", "interrupted"]
# The reason of the `interrupted` a process writes as it hands its runs over (SIGTERM).
HANDOVER = "handed over: the server is shutting down"


@dataclass(frozen=True, slots=True)
class BotTurn:
    """Turn `turn` of a run, spoken by bot `bot` (its index) called `name`."""

    turn: int
    bot: int
    name: str
    round: int | None = None  # the policy's round (`rounds`), when it has rounds

    def fields(self) -> dict[str, Any]:
        if self.round is None:
            return {"turn": self.turn, "bot": self.bot, "name": self.name}
        return {"turn": self.turn, "bot": self.bot, "name": self.name, "round": self.round}

    def token_fields(self) -> dict[str, Any]:
        return {"turn": self.turn, "bot": self.bot, "name": self.name}


@dataclass(frozen=True, slots=True)
class Reply:
    """The model's answer to user message `in_reply_to` of a conversation. Its tokens carry
    only `name`: the stream is that one reply's, its `turn_start` says the rest."""

    conversation_id: str
    in_reply_to: str
    name: str = "assistant"

    def fields(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "in_reply_to": self.in_reply_to,
            "name": self.name,
        }

    def token_fields(self) -> dict[str, Any]:
        return {"name": self.name}


Speaker = BotTurn | Reply


@dataclass(frozen=True, slots=True)
class RunStatusChanged:
    type: ClassVar[Literal["run_status"]] = "run_status"
    status: RunStatus
    reason: str | None = None
    error: str | None = None
    ended_by: str | None = None  # the termination condition that ended the run

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status.value}
        if self.reason:
            data["reason"] = self.reason
        if self.error:
            data["error"] = self.error
        if self.ended_by:
            data["ended_by"] = self.ended_by
        return data


@dataclass(frozen=True, slots=True)
class TurnStart:
    type: ClassVar[Literal["turn_start"]] = "turn_start"
    speaker: Speaker
    model: str | None

    def data(self) -> dict[str, Any]:
        return {**self.speaker.fields(), "model": self.model}


@dataclass(frozen=True, slots=True)
class Token:
    type: ClassVar[Literal["token"]] = "token"
    fields: dict[str, Any]  # the speaker's `token_fields()`, computed once per turn
    delta: str

    def data(self) -> dict[str, Any]:
        return {**self.fields, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The turn's whole text; `message_id` is None when nothing was saved (no text, or the
    save failed)."""

    type: ClassVar[Literal["turn_complete"]] = "turn_complete"
    speaker: Speaker
    message: Message
    saved: bool = True

    def data(self) -> dict[str, Any]:
        message = self.message
        return {
            **self.speaker.fields(),
            "model": message.model,
            "message_id": message.id if self.saved and message.complete_event else None,
            "status": message.status.value,
            "content": message.content,
            "usage": message.usage.to_dict() if message.usage else None,
            **({"tool_calls": message.tool_calls} if message.tool_calls else {}),
            # The price table's cost of `usage` (0 for a free model); left out unpriced.
            **({"cost_usd": message.cost_usd} if message.cost_usd is not None else {}),
            # Only `length` (a turn that reached its max_tokens) is told: the rest is what
            # `status` says. Stored with the message, so a rebuilt stream tells it too.
            **({"finish_reason": "length"} if message.finish_reason == "length" else {}),
        }


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """The model asked for a tool call (whole, once its arguments are complete). A call of
    a client's function: the client runs it and sends the result as a `tool` message. A
    call of an MCP server's tool (`server` and `tool` set): Symposia runs it, and its
    `tool_result` follows."""

    type: ClassVar[Literal["tool_call"]] = "tool_call"
    speaker: Speaker
    id: str
    function: str
    arguments: str
    server: str | None = None
    tool: str | None = None

    def data(self) -> dict[str, Any]:
        data = {
            **self.speaker.token_fields(),
            "id": self.id,
            "function": self.function,
            "arguments": self.arguments,
        }
        if self.server is not None:
            data["server"], data["tool"] = self.server, self.tool
        return data


@dataclass(frozen=True, slots=True)
class ToolResulted:
    """What an MCP tool call (`id`, of the `tool_call` before it) gave: its text for the
    model (capped), whether it is an error (the tool's, a timeout, a crash, a denial), and
    how long it took."""

    type: ClassVar[Literal["tool_result"]] = "tool_result"
    speaker: Speaker
    id: str
    content: str
    is_error: bool
    duration_ms: float

    def data(self) -> dict[str, Any]:
        return {
            **self.speaker.token_fields(),
            "id": self.id,
            "content": self.content,
            "is_error": self.is_error,
            "duration_ms": self.duration_ms,
        }


INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class StreamError:
    """A failure the stream's reader is shown: at least `code` and `message`."""

    type: ClassVar[Literal["error"]] = "error"
    failure: dict[str, Any]

    @classmethod
    def internal(cls, message: str) -> StreamError:
        return cls({"code": INTERNAL_ERROR, "message": message})

    def data(self) -> dict[str, Any]:
        return dict(self.failure)


@dataclass(frozen=True, slots=True)
class RunDone:
    """The last event of a run's stream."""

    type: ClassVar[Literal["done"]] = "done"
    status: RunStatus
    ended_by: str | None = None

    def data(self) -> dict[str, Any]:
        if self.ended_by:
            return {"status": self.status.value, "ended_by": self.ended_by}
        return {"status": self.status.value}


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """The last event of a reply's stream; `response_id` is the saved reply's id again, for
    clients of the OpenAI-style shape."""

    type: ClassVar[Literal["done"]] = "done"
    conversation_id: str
    outcome: ReplyOutcome
    message_id: str | None

    def data(self) -> dict[str, Any]:
        return {
            "status": self.outcome,
            "message_id": self.message_id,
            "response_id": self.message_id,
            "conversation_id": self.conversation_id,
        }


@dataclass(frozen=True, slots=True)
class PersonSaid:
    """A person's message added to a running run (`POST /api/run/{id}/messages`), streamed
    by the run's owner before the next speaker, who sees it."""

    type: ClassVar[Literal["person_message"]] = "person_message"
    message: Message

    def data(self) -> dict[str, Any]:
        return {
            "message_id": self.message.id,
            "author": self.message.author,
            "content": self.message.content,
            "turn": self.message.turn,
        }


@dataclass(frozen=True, slots=True)
class BotUpdated:
    """A bot was changed while the run went on (`PATCH /api/run/{id}/bot/{index}`); it
    speaks with the change from turn `turn` on."""

    type: ClassVar[Literal["bot_updated"]] = "bot_updated"
    bot: int
    name: str
    changes: dict[str, Any]
    turn: int

    def data(self) -> dict[str, Any]:
        return {"bot": self.bot, "name": self.name, "changes": self.changes, "turn": self.turn}


@dataclass(frozen=True, slots=True)
class SpeakerSelected:
    """The supervisor (policy `selector`) chose who speaks next: `answer` is what it said
    (trimmed), `attempts` how many times it was asked, `fallback` whether no answer named
    an allowed agent and the documented fallback chose."""

    type: ClassVar[Literal["speaker_selected"]] = "speaker_selected"
    bot: int
    name: str
    answer: str
    attempts: int
    fallback: bool

    def data(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "name": self.name,
            "answer": self.answer,
            "attempts": self.attempts,
            "fallback": self.fallback,
        }


@dataclass(frozen=True, slots=True)
class Routed:
    """A panel's supervisor routed the question: `agent` answers (a specialist's name, or
    `supervisor` for a direct answer) because of `reason`. `attempts` is how many times
    it was asked; `fallback` says no valid answer came and the panel's fallback answers
    (`error` then says why, when the supervisor's model failed)."""

    type: ClassVar[Literal["routing"]] = "routing"
    routing: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return dict(self.routing)


@dataclass(frozen=True, slots=True)
class AwaitingInput:
    """The run waits for the person behind agent `bot` (of kind `human`) until `until`."""

    type: ClassVar[Literal["awaiting_input"]] = "awaiting_input"
    bot: int
    name: str
    until: datetime

    def data(self) -> dict[str, Any]:
        return {"bot": self.bot, "name": self.name, "until": self.until.isoformat()}


@dataclass(frozen=True, slots=True)
class ApprovalAwaited:
    """The turn of `speaker` waits until `until` for its owner to approve or deny the MCP
    tool call `call` (`id`, `server`, `tool`, `arguments`): `POST .../approvals/{id}`."""

    type: ClassVar[Literal["awaiting_input"]] = "awaiting_input"
    speaker: Speaker
    call: dict[str, str]
    until: datetime

    def data(self) -> dict[str, Any]:
        return {
            **self.speaker.token_fields(),
            "call": dict(self.call),
            "until": self.until.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The run's final answer: by `vote` (`votes`: each answer, normalised, with its count),
    a `judge` or the `moderator` (`reason`: what they said; `winner`: the side that won, in
    a moderated debate)."""

    type: ClassVar[Literal["verdict"]] = "verdict"
    method: str
    answer: str
    votes: dict[str, int]
    reason: str
    winner: str | None = None

    def data(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "answer": self.answer,
            "votes": self.votes,
            "reason": self.reason,
            "winner": self.winner,
        }


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The process generating the run stopped (it died, or handed the run over as it left):
    `turn` is the turn the run goes on from when it is resumed."""

    type: ClassVar[Literal["interrupted"]] = "interrupted"
    reason: str
    turn: int

    def data(self) -> dict[str, Any]:
        return {"reason": self.reason, "turn": self.turn}


@dataclass(frozen=True, slots=True)
class Resumed:
    """Another process (or this one, restarted) took the run over and goes on from `turn`;
    `takeovers` counts how many times that has happened to this run."""

    type: ClassVar[Literal["resumed"]] = "resumed"
    turn: int
    takeovers: int

    def data(self) -> dict[str, Any]:
        return {"turn": self.turn, "takeovers": self.takeovers}


IdRanges = tuple[tuple[int, int], ...]  # ascending, disjoint [first, last] pairs of ids


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Stands for events that are no longer kept one by one (a turn's tokens, compacted
    once the live log was gone): `ranges` are the ids it stands for, its own id the last
    of them, none held by another event; `messages` the whole text of the turns whose
    tokens are among them (none when what it stands for carried no text). `first_id` on
    the wire is the first of those ids, for clients that read only that."""

    type: ClassVar[Literal["snapshot"]] = "snapshot"
    ranges: IdRanges
    messages: tuple[Message, ...] = field(default=())

    def data(self) -> dict[str, Any]:
        return {
            "first_id": self.ranges[0][0],
            "ranges": [[first, last] for first, last in self.ranges],
            "messages": [
                {
                    "message_id": m.id,
                    "turn": m.turn,
                    "bot": m.bot_index,
                    "name": m.author,
                    "content": m.content,
                }
                for m in self.messages
            ],
        }


Payload = (
    RunStatusChanged
    | TurnStart
    | Token
    | ToolCalled
    | ToolResulted
    | TurnComplete
    | StreamError
    | RunDone
    | ReplyDone
    | PersonSaid
    | BotUpdated
    | SpeakerSelected
    | Routed
    | AwaitingInput
    | ApprovalAwaited
    | Verdict
    | Interrupted
    | Resumed
    | Snapshot
)


def event(seq: int, payload: Payload) -> Event:
    """`payload` as the event numbered `seq` (a stream rebuilt from storage)."""
    return Event(seq, payload.type, payload.data())

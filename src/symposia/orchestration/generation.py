"""One model call streamed into an event log, producing one message whatever happens.

Shared by run turns and conversation replies. The text is kept on every exit: complete
when the model finished, `partial` when a stop (cancellation) or a provider failure cut
it short. Failures come out as `GenerationFailedError` carrying the user-facing shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from symposia.domain.event_types import (
    ApprovalAwaited,
    Speaker,
    Token,
    ToolCalled,
    ToolResulted,
)
from symposia.domain.models import Message, MessageStatus, TurnUsage, utcnow
from symposia.errors import (
    FencedOutError,
    ProviderError,
    ProviderFailure,
    SymposiaError,
    UnavailableError,
)
from symposia.events.emit import emit
from symposia.events.log import Appender, StreamNotFoundError
from symposia.orchestration.answer import (
    CHARS_PER_TOKEN_ESTIMATE,
    Answer,
    Models,
    estimate,
    prompt_chars,
)
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    ResponseFormat,
    TextDelta,
    Tool,
    ToolCall,
)
from symposia.providers.sentences import trim_to_sentence
from symposia.tools.approvals import Approvals
from symposia.tools.toolbox import PendingCall, Toolbox, tool_message_content

__all__ = [
    "CHARS_PER_TOKEN_ESTIMATE",
    "Generation",
    "GenerationFailedError",
    "Models",
    "answer_of",
    "check_budget",
    "prompt_chars",
]


class GenerationFailedError(Exception):
    """A model call failed; `failure` is what the user is shown."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(slots=True)
class Generation:
    """Streams `models` (the first, then its fallbacks) into `stream_id` as the `token`
    events of `speaker`, at the writer's lease `epoch` (None for an unleased stream).

    With a `toolbox`, the turn is a tool loop: each call of one of its MCP tools is run
    (in parallel with the others of the same answer), streamed as `tool_call` and
    `tool_result`, fed back, and the model asked again, up to the toolbox's `max_steps`
    rounds of calls. Each model call of the loop is one `Answer`; the message is all of
    their text, their usage added up, and the calls run (`tool_steps`)."""

    models: Models
    log: Appender
    stream_id: str
    speaker: Speaker
    epoch: int | None = None
    started: float = field(default_factory=time.perf_counter)
    answer: Answer | None = None
    answers: list[Answer] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    client_calls: list[ToolCall] = field(default_factory=list)
    # Who approves the calls that need it, and the run or conversation asking
    # (`run:{id}`, `conversation:{id}`); without, such calls are denied.
    approvals: Approvals | None = None
    subject: str = ""
    # Cancelled while a call waited for approval: the turn is left open for whoever goes
    # on with the run (a new owner waits on the stored call; a stop closes it).
    cut_while_waiting: bool = False
    _asked: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def stream(
        self,
        candidates: Sequence[str],
        messages: Sequence[ChatMessage],
        temperature: float | None,
        max_tokens: int | None,
        tools: tuple[Tool, ...] = (),
        toolbox: Toolbox | None = None,
        rounds: int = 0,
    ) -> None:
        """Stream the answer as `token` events; the client's tool calls it asked for, each
        whole, as `tool_call` events once it ended; MCP tool calls as above. `rounds`: those
        of calls already run (by a writer this turn was taken over from)."""
        offered = tools + (toolbox.definitions() if toolbox is not None else ())
        history = list(messages)
        while True:
            answer = await self._one(candidates, history, temperature, max_tokens, offered)
            calls = answer.tool_calls
            mine = [c for c in calls if toolbox is not None and toolbox.owns(c.name)]
            self.client_calls = [c for c in calls if c not in mine]
            for call in self.client_calls:
                called = ToolCalled(self.speaker, call.id, call.name, call.arguments)
                await emit(self.log, self.stream_id, called, self.epoch)
            if not mine or toolbox is None or rounds >= toolbox.max_steps:
                return  # calls past the limit are not run: the turn ends with its text
            rounds += 1
            await self._run_tools(toolbox, mine)
            if self.client_calls:
                return  # the client runs its own calls; the answer waits for them
            history.append(ChatMessage("assistant", answer.text, tuple(mine)))
            history += [
                ChatMessage("tool", step["model_content"], tool_call_id=step["id"])
                for step in self.steps[-len(mine) :]
            ]

    async def _one(
        self,
        candidates: Sequence[str],
        messages: Sequence[ChatMessage],
        temperature: float | None,
        max_tokens: int | None,
        tools: tuple[Tool, ...],
    ) -> Answer:
        """One model call of the turn, its text streamed as `token` events."""
        request = CompletionRequest(
            "",
            messages,
            temperature=temperature,
            max_tokens=max_tokens,
            tools=tools,
            truncation="auto",  # a long run's oldest turns make way, as the context does
            end_at_sentence=True,  # a turn cut at max_tokens ends at a sentence end
        )
        answer = self.answer = Answer.of(self.models, candidates, request)
        self.answers.append(answer)
        answer.started = self.started if len(self.answers) == 1 else time.perf_counter()
        fields = self.speaker.token_fields()
        try:
            async for delta in answer:
                if type(delta) is TextDelta:
                    await emit(self.log, self.stream_id, Token(fields, delta.text), self.epoch)
        except ProviderError as exc:
            raise GenerationFailedError(exc.failure) from exc
        except (FencedOutError, UnavailableError, StreamNotFoundError):
            raise  # not the model's failure: the writer lost the run, or its log failed
        except SymposiaError as exc:
            model = answer.model or candidates[0]
            raise GenerationFailedError(
                ProviderFailure(
                    code=exc.code,
                    message=exc.message,
                    provider=model.partition("/")[0],
                    model=model,
                    status=exc.status_code,
                )
            ) from exc
        return answer

    async def _approve(self, call: PendingCall) -> bool:
        """Ask the owner (a stored pending call, announced as `awaiting_input`)."""
        if self.approvals is None:
            return False

        async def announce(pending: PendingCall, until: datetime) -> None:
            asked = {
                "id": pending.id,
                "server": pending.server,
                "tool": pending.tool,
                "arguments": pending.arguments,
            }
            waiting = ApprovalAwaited(self.speaker, asked, until)
            sent = await emit(self.log, self.stream_id, waiting, self.epoch)
            self._asked[pending.id] = {
                "approval_event": sent.seq,
                "approval_until": until.isoformat(),
            }

        try:
            approved = await self.approvals.ask(
                self.subject, self.stream_id, self.speaker.name, call, announce
            )
        except asyncio.CancelledError:
            self.cut_while_waiting = True
            raise
        self._asked.setdefault(call.id, {})["approval"] = "approved" if approved else "denied"
        return approved

    async def _run_tools(self, toolbox: Toolbox, calls: list[ToolCall]) -> None:
        """Announce, run (in parallel) and report one answer's MCP tool calls."""
        toolbox.approver = self._approve
        steps: list[dict[str, Any]] = []
        for call in calls:
            pending = toolbox.pending(call)
            called = ToolCalled(
                self.speaker, call.id, call.name, call.arguments, pending.server, pending.tool
            )
            sent = await emit(self.log, self.stream_id, called, self.epoch)
            steps.append(
                {
                    "id": call.id,
                    "server": pending.server,
                    "tool": pending.tool,
                    "function": call.name,
                    "arguments": call.arguments,
                    "call_event": sent.seq,
                }
            )
        outcomes = await asyncio.gather(*(toolbox.run(call) for call in calls))
        for step, outcome in zip(steps, outcomes, strict=True):
            result = ToolResulted(
                self.speaker, step["id"], outcome.content, outcome.is_error, outcome.duration_ms
            )
            sent = await emit(self.log, self.stream_id, result, self.epoch)
            step.update(
                content=outcome.content,
                is_error=outcome.is_error,
                duration_ms=outcome.duration_ms,
                result_event=sent.seq,
                model_content=tool_message_content(outcome),
                **self._asked.pop(step["id"], {}),
            )
        self.steps += steps

    def finish(self, message: Message, status: MessageStatus, prompt_chars: int) -> Message:
        """Fill `message` with what was produced: text, status, usage, the model that spoke,
        the client's tool calls to answer and the MCP calls that were run."""
        answer = self.answer
        message.status = status
        message.completed_at = utcnow()
        if answer is None:  # never started
            message.content = ""
            message.usage = estimate(prompt_chars, 0)
            return message
        message.content = "".join(a.text for a in self.answers)
        if answer.complete and answer.finish == "length" and not answer.tool_calls:
            # Whatever the provider streamed, the turn kept ends at a sentence end: the
            # local model stops at one itself, another's last unfinished sentence goes.
            message.content = trim_to_sentence(message.content)
        if self.client_calls:
            message.tool_calls = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.client_calls
            ]
        if self.steps:
            message.tool_steps = [
                {k: v for k, v in step.items() if k != "model_content"} for step in self.steps
            ]
        if answer.model:
            message.model = answer.model  # a fallback may have answered
        message.usage = self._usage(prompt_chars)
        message.finish_reason = answer.finish if answer.complete else None
        return message

    def _usage(self, prompt_chars: int) -> TurnUsage:
        """The first call's usage (estimated from `prompt_chars` if need be), with the
        tokens of the loop's other calls added: each is a model call of its own."""
        first, *others = self.answers
        usage = first.usage(prompt_chars)
        for answer in others:
            more = answer.usage()
            usage.prompt_tokens += more.prompt_tokens
            usage.completion_tokens += more.completion_tokens
            usage.estimated = usage.estimated or more.estimated
        usage.total_ms = round((time.perf_counter() - self.started) * 1000, 2)
        return usage


def object_format(name: str, properties: dict[str, Any]) -> ResponseFormat:
    """Structured output of one JSON object with exactly `properties`, all required:
    how a supervisor, a moderator or a judge is asked for a strict answer."""
    return ResponseFormat(
        "json_schema",
        name=name,
        schema={
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    )


async def check_budget(
    models: Models,
    candidates: Sequence[str],
    messages: Sequence[ChatMessage],
    max_tokens: int | None,
) -> None:
    """GenerationFailedError (`budget_exceeded`) if the caller's key could not pay for
    this call now: asked before a run's turn is recorded, so a refused turn leaves no
    empty message behind (the call's own admission, later, still decides)."""
    meter = models.meter
    if meter is None:
        return
    request = CompletionRequest("", messages, max_tokens=max_tokens, truncation="auto")
    try:
        await meter.affords(models.call(candidates, request))
    except SymposiaError as exc:
        model = candidates[0]
        raise GenerationFailedError(
            ProviderFailure(
                code=exc.code,
                message=exc.message,
                provider=model.partition("/")[0],
                model=model,
                status=exc.status_code,
            )
        ) from exc


async def answer_of(
    models: Models,
    model: str,
    messages: Sequence[ChatMessage],
    max_tokens: int = 200,
    response_format: ResponseFormat | None = None,
) -> str:
    """A model's whole answer, not streamed to anyone: a supervisor's choice, a verdict.
    Asked at temperature 0, with the retries of any call; a failure is GenerationFailedError.
    `response_format` holds the answer to a schema where the model's provider can (the
    local model by a grammar); elsewhere the caller's parsing is the only check."""
    if response_format is not None:
        provider, _ = models.registry.resolve(model)
        if "response_format" not in provider.features:
            response_format = None
    request = CompletionRequest(
        "",
        messages,
        temperature=0.0,
        max_tokens=max_tokens,
        response_format=response_format,
        truncation="auto",
    )
    answer = Answer.of(models, [model], request)
    answer.streamed = False
    try:
        async for _ in answer:
            pass
    except ProviderError as exc:
        raise GenerationFailedError(exc.failure) from exc
    except (FencedOutError, UnavailableError):
        raise
    except SymposiaError as exc:  # refused before the call: the caller's key's limits
        raise GenerationFailedError(
            ProviderFailure(
                code=exc.code,
                message=exc.message,
                provider=model.partition("/")[0],
                model=model,
                status=exc.status_code,
            )
        ) from exc
    return answer.text

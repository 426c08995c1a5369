"""OpenAI's Responses API over any Symposia model, chained in Symposia's own storage.

`previous_response_id` works for every provider: a stored response keeps its input items
and its output, and a request continuing it sends the model the whole chain (each
response's input, then its output) before its own input. `instructions` are the request's
own, never carried over from a previous response (as OpenAI does). `store: false` keeps
nothing, so such a response can be neither retrieved nor continued.

The service takes a `ResponsesRequest` and streams typed events
(`domain.response_events`), a batch per model delta; the wire format is
`streaming.responses_events`'s.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from symposia.aio import complete
from symposia.domain.response_events import (
    ContentPartAdded,
    ContentPartDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ResponseCompleted,
    ResponseCreated,
    ResponseEnding,
    ResponseEvent,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
)
from symposia.domain.response_request import CHAT_NAMES, ResponsesRequest
from symposia.errors import NotFoundError, SymposiaError, UnsupportedParameterError
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from symposia.services.completions import CompletionCall, CompletionService
from symposia.services.response_items import (
    call_item,
    format_of,
    input_items,
    message_item,
    new_id,
    text_part,
    to_messages,
    tool_choice_of,
    tools_of,
)
from symposia.storage.sql_responses import SqlResponseRepository
from symposia.streaming.openai_errors import openai_error

Events = list[ResponseEvent]


@dataclass(slots=True)
class ResponseCall:
    """One validated `POST /v1/responses`, ready to run, and what it produced."""

    body: ResponsesRequest
    items: list[dict[str, Any]]
    completion: CompletionCall
    owner: str | None
    id: str = field(default_factory=lambda: new_id("resp"))
    created: int = field(default_factory=lambda: int(time.time()))
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    status: str = "completed"

    def set_usage(self, prompt: int, completion: int) -> None:
        self.usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }

    def end(self, finish_reason: str | None) -> None:
        self.status = "incomplete" if finish_reason == "length" else "completed"

    def object(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Response object, as OpenAI's schema has it, at `status`."""
        body = self.body
        finished = status != "in_progress"
        response: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": int(time.time()) if finished else None,
            "error": error,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": self.completion.model,
            "output": self.output if finished else [],
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": body.store,
            "temperature": body.temperature,
            "text": body.text or {"format": {"type": "text"}},
            "tool_choice": body.tool_choice or "auto",
            "tools": [
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": tool.strict,
                }
                for tool in self.completion.request.tools
            ],
            "top_p": body.top_p,
            "truncation": "disabled",
            "metadata": body.metadata or {},
        }
        # The schema types both as present or absent, never null.
        if finished and self.usage is not None:
            response["usage"] = self.usage
        if body.user is not None:
            response["user"] = body.user
        return response

    def failed(self, error: dict[str, Any]) -> ResponseFailed:
        """`response.failed` carrying `error` (OpenAI's error object) and what was said."""
        return ResponseFailed(self.object("failed", response_error(error)))

    def ending(self) -> ResponseEnding:
        final = self.object(self.status)
        if self.status == "completed":
            return ResponseCompleted(final)
        return ResponseIncomplete(final)


@dataclass(slots=True)
class ResponseService:
    completions: CompletionService
    repo: SqlResponseRepository

    async def prepare(self, body: ResponsesRequest, owner: str | None) -> ResponseCall:
        """Validate everything (the chain included) before any model is called."""
        items = input_items(body.input)
        asked = to_messages(items)
        self._check_lengths(body.instructions, items, isinstance(body.input, str))
        history: list[ChatMessage] = []
        if body.previous_response_id is not None:
            history = await self._history(body.previous_response_id, owner)
        system = [ChatMessage("system", body.instructions)] if body.instructions else []
        request = CompletionRequest(
            "",
            [*system, *history, *asked],
            temperature=body.temperature,
            max_tokens=body.max_output_tokens,
            top_p=body.top_p,
            tools=tools_of(body.tools),
            tool_choice=tool_choice_of(body.tool_choice),
            parallel_tool_calls=body.parallel_tool_calls,
            response_format=format_of(body.text),
            options=body.options,
        )
        try:
            completion = await self.completions.prepare(
                body.model, request, owner=owner, conversation=None, message_field=None
            )
        except UnsupportedParameterError as exc:  # named as this body names it
            name = CHAT_NAMES.get(exc.field or "", exc.field)
            raise UnsupportedParameterError(
                exc.message.replace(str(exc.field), str(name), 1), name
            ) from None
        made = ResponseCall(body, items, completion, owner)
        completion.surface, completion.response_id = "/v1/responses", made.id
        return made

    def _check_lengths(
        self, instructions: str | None, items: list[dict[str, Any]], text: bool
    ) -> None:
        """The instructions and each input item (valid) within MAX_MESSAGE_CHARS, not the
        chain's stored answers, which a model wrote: a 413 naming the one over it
        (`input` itself when it is `text`)."""
        check = self.completions.conversations.check_text
        if instructions:
            check(instructions, "instructions")
        for index, item in enumerate(items):
            for message in to_messages([item]):
                check(message.content, "input" if text else f"input.{index}")

    async def _history(self, previous_id: str, owner: str | None) -> list[ChatMessage]:
        """The chain `previous_id` ends, as messages: each response's input, then its
        output (its messages and function calls)."""
        chain = await self.repo.chain(previous_id)
        if not chain or chain[-1].id != previous_id or not _visible(chain[-1].owner, owner):
            raise NotFoundError(f"previous response {previous_id!r} not found")
        history: list[ChatMessage] = []
        for stored in chain:
            history += to_messages(stored.input)
            history += to_messages(stored.body.get("output", []), "previous_response_id")
        return history

    async def create(self, call: ResponseCall) -> dict[str, Any]:
        """The whole answer as one Response object; stored first when asked to."""
        answer = await self.completions.complete(call.completion)
        if answer.text:
            call.output.append(message_item(new_id("msg"), answer.text, "completed"))
        call.output += [call_item(new_id("fc"), c, "completed") for c in answer.tool_calls]
        call.set_usage(answer.usage.prompt_tokens, answer.usage.completion_tokens)
        call.end(answer.finish_reason)
        final = call.object(call.status)
        await self._store(call, final)
        return final

    async def start(
        self, call: ResponseCall, on_end: StreamEnded | None = None
    ) -> AsyncIterator[Events]:
        """Await the first delta (a failure now raises, for an HTTP error), then return
        the stream of typed events, a batch per delta (one write each); the last batch
        ends with the Response's ending. `on_end` is told how it ended (its last event's
        type and Response object), or (None, None) if it was cut off before its end. A
        stream the server cuts (its shutdown) ends with `call.failed(error)`."""
        started = await self.completions.start(call.completion)
        return self._events(call, started.first, started.rest, on_end)

    async def _events(
        self,
        call: ResponseCall,
        first: Delta,
        rest: AsyncIterator[Delta],
        on_end: StreamEnded | None = None,
    ) -> AsyncIterator[Events]:
        stream = _Stream(call)
        started = call.object("in_progress")  # the same object, in both events
        head: Events = [ResponseCreated(started), ResponseInProgress(started)]
        try:
            delta: Delta | None = first
            while delta is not None:
                head += stream.take(delta)
                if head and type(delta) is not StreamEnd:
                    yield head
                    head = []
                delta = await anext(rest, None)
            head += stream.close()
            last: ResponseEnding = call.ending()
            await complete(self._store(call, last.response))  # retrievable before it is seen
        except SymposiaError as exc:  # after output began: the response failed
            head += stream.close()
            last = call.failed(openai_error(exc)[1])
        except BaseException:
            if on_end is not None:
                await complete(on_end(None, None))
            raise
        finally:
            aclose = getattr(rest, "aclose", None)
            if aclose is not None:
                await aclose()
        if on_end is not None:
            await complete(on_end(last.type, last.response))
        yield [*head, last]  # it leaves with the end of the body

    async def _store(self, call: ResponseCall, final: dict[str, Any]) -> None:
        if call.body.store:
            await self.repo.add(
                call.id, call.owner, call.body.previous_response_id, call.items, final
            )

    async def get(self, response_id: str, owner: str | None) -> dict[str, Any]:
        stored = await self.repo.get(response_id)
        if stored is None or not _visible(stored.owner, owner):
            raise NotFoundError(f"response {response_id!r} not found")
        return stored.body

    async def delete(self, response_id: str, owner: str | None) -> None:
        await self.get(response_id, owner)
        await self.repo.delete(response_id)


# How a streamed response ended: its last event's type and Response object, or (None, None)
# when it was cut off before its end.
StreamEnded = Callable[[str | None, dict[str, Any] | None], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class _Stream:
    """The output items of a streamed response, opened and closed as deltas arrive: a
    message item for text, a function-call item for each tool call, one after another."""

    call: ResponseCall
    item_id: str = ""
    text: list[str] = field(default_factory=list)
    tool: int | None = None  # the tool call's index, when a function-call item is open
    tool_call: ToolCall | None = None
    arguments: list[str] = field(default_factory=list)

    @property
    def _index(self) -> int:
        return len(self.call.output)

    def take(self, delta: Delta) -> Events:
        if type(delta) is TextDelta:
            out: Events = []
            if not self.item_id or self.tool is not None:
                out = self.close() + self._open_message()
            self.text.append(delta.text)
            out.append(OutputTextDelta(self.item_id, self._index, delta.text))
            return out
        if type(delta) is ToolCallDelta:
            out = []
            if self.tool != delta.index:
                out = self.close() + self._open_call(delta)
            if delta.arguments:
                self.arguments.append(delta.arguments)
                out.append(FunctionCallArgumentsDelta(self.item_id, self._index, delta.arguments))
            return out
        if isinstance(delta, StreamEnd):
            self.call.end(delta.finish_reason)
            if delta.prompt_tokens is not None and delta.completion_tokens is not None:
                self.call.set_usage(delta.prompt_tokens, delta.completion_tokens)
        return []

    def _open_message(self) -> Events:
        self.item_id = new_id("msg")
        item = message_item(self.item_id, "", "in_progress")
        return [
            OutputItemAdded(self._index, item),
            ContentPartAdded(self.item_id, self._index, text_part("")),
        ]

    def _open_call(self, delta: ToolCallDelta) -> Events:
        self.item_id, self.tool = new_id("fc"), delta.index
        self.tool_call = ToolCall(delta.id or new_id("call"), delta.name or "", "")
        item = call_item(self.item_id, self.tool_call, "in_progress")
        return [OutputItemAdded(self._index, item)]

    def close(self) -> Events:
        """Close the open item, if any: its `done` events; it joins the output."""
        if not self.item_id:
            return []
        item_id, index = self.item_id, self._index
        status = "incomplete" if self.call.status == "incomplete" else "completed"
        out: Events
        if self.tool_call is not None:
            call = ToolCall(self.tool_call.id, self.tool_call.name, "".join(self.arguments))
            item = call_item(item_id, call, status)
            out = [FunctionCallArgumentsDone(item_id, index, call.name, call.arguments)]
        else:
            text = "".join(self.text)
            item = message_item(item_id, text, status)
            out = [
                OutputTextDone(item_id, index, text),
                ContentPartDone(item_id, index, text_part(text)),
            ]
        out.append(OutputItemDone(index, item))
        self.call.output.append(item)
        self.item_id, self.text, self.tool, self.tool_call, self.arguments = "", [], None, None, []
        return out


def response_error(error: dict[str, Any]) -> dict[str, str]:
    """A Response's `error`: OpenAI's schema allows a few codes only, so ours (say
    `stream_error`) is `server_error` with our code leading its message."""
    code = str(error.get("code") or "")
    if code in ("rate_limited", "rate_limit_exceeded") or error.get("type") == "rate_limit_error":
        return {"code": "rate_limit_exceeded", "message": str(error["message"])}
    return {"code": "server_error", "message": f"{code}: {error['message']}"}


def _visible(stored_owner: str | None, owner: str | None) -> bool:
    return owner is None or stored_owner == owner

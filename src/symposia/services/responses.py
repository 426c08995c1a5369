"""OpenAI's Responses API over any Symposia model, chained in Symposia's own storage.

`previous_response_id` works for every provider: a stored response keeps its input items
and its output, and a request continuing it sends the model the whole chain (each
response's input, then its output) before its own input. `instructions` are the request's
own, never carried over from a previous response (as OpenAI does). `store: false` keeps
nothing, so such a response can be neither retrieved nor continued.

The service takes a `ResponsesRequest` and streams typed events
(`domain.response_events`), a batch per model delta; the wire format is
`streaming.responses_events`'s.

With `mcp` tools (`tools.hosted`) the response is a loop: each server's tools are listed
(an `mcp_list_tools` item, unless the chain or the input already holds one), the model
is called, each of its calls that needs no approval runs here (an `mcp_call` item) and
the model is called again with the results, up to MAX_TOOL_STEPS model calls. A call
that needs approval ends the response with an `mcp_approval_request` item; the client's
`mcp_approval_response` (in a request continuing it) runs or denies it first.
"""

from __future__ import annotations

import dataclasses
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
    McpCallArgumentsDelta,
    McpCallArgumentsDone,
    McpCallCompleted,
    McpCallFailed,
    McpCallInProgress,
    McpListToolsCompleted,
    McpListToolsFailed,
    McpListToolsInProgress,
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
from symposia.errors import (
    InvalidInputError,
    NotFoundError,
    SymposiaError,
    UnsupportedParameterError,
)
from symposia.providers.base import (
    ChatMessage,
    CompletionRequest,
    Delta,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from symposia.security.outbound_urls import UrlPrefix
from symposia.security.principals import Principal
from symposia.services.completions import CompletionCall, CompletionService
from symposia.services.response_items import (
    add_tool_step,
    approval_request_item,
    call_item,
    format_of,
    input_items,
    list_tools_item,
    listed_tools,
    mcp_call_item,
    message_item,
    new_id,
    text_part,
    to_messages,
    tool_choice_of,
    tools_of,
)
from symposia.storage.sql_responses import SqlResponseRepository
from symposia.streaming.openai_errors import openai_error
from symposia.tools.hosted import HostedTools, hosted_tools
from symposia.tools.servers import ServerTool, ToolServerError, ToolServers
from symposia.tools.toolbox import DEFAULT_MAX_TOOL_STEPS, DENIED, function_name

Events = list[ResponseEvent]


@dataclass(frozen=True, slots=True)
class Approval:
    """A client's answer (`mcp_approval_response`) to an `mcp_approval_request` item."""

    request: dict[str, Any]
    approve: bool
    reason: str | None = None


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
    hosted: HostedTools | None = None  # its `mcp` tools
    earlier: list[dict[str, Any]] = field(default_factory=list)  # the chain's items, then its
    approvals: list[Approval] = field(default_factory=list)

    def set_usage(self, prompt: int, completion: int) -> None:
        """Count a model call's tokens (a tool loop makes several)."""
        if self.usage is not None:
            prompt += self.usage["input_tokens"]
            completion += self.usage["output_tokens"]
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
                *(
                    {
                        "type": "function",
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                        "strict": tool.strict,
                    }
                    for tool in self.completion.request.tools
                    if self.hosted is None or not self.hosted.owns(tool.name)
                ),
                *(hosted.echo for hosted in (self.hosted.servers if self.hosted else ())),
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
    tools: ToolServers = field(default_factory=ToolServers)  # the operator's MCP servers
    allowed_urls: tuple[UrlPrefix, ...] = ()  # MCP_ALLOWED_URLS
    max_tool_steps: int = DEFAULT_MAX_TOOL_STEPS

    async def prepare(
        self, body: ResponsesRequest, owner: str | None, principal: Principal | None = None
    ) -> ResponseCall:
        """Validate everything (the chain and the `mcp` tools included) before any model
        is called or any MCP server connected."""
        items = input_items(body.input)
        asked = to_messages(items)
        self._check_lengths(body.instructions, items, isinstance(body.input, str))
        history: list[ChatMessage] = []
        earlier: list[dict[str, Any]] = []
        if body.previous_response_id is not None:
            history, earlier = await self._history(body.previous_response_id, owner)
        hosted = await hosted_tools(body.tools, self.tools, self.allowed_urls, principal)
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
        if hosted is not None:
            provider, _ = self.completions.models.registry.resolve(body.model)
            if "tools" not in provider.features:
                raise UnsupportedParameterError(
                    f"tools is not supported by the {provider.name} provider (model "
                    f"{body.model}); choose a model of a provider that supports it",
                    "tools",
                )
        made = ResponseCall(body, items, completion, owner, hosted=hosted)
        made.earlier = [*earlier, *items]
        made.approvals = _approvals(items, made.earlier, hosted)
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

    async def _history(
        self, previous_id: str, owner: str | None
    ) -> tuple[list[ChatMessage], list[dict[str, Any]]]:
        """The chain `previous_id` ends, as messages (each response's input, then its
        output: its messages, function and MCP calls) and as items."""
        chain = await self.repo.chain(previous_id)
        if not chain or chain[-1].id != previous_id or not _visible(chain[-1].owner, owner):
            raise NotFoundError(f"previous response {previous_id!r} not found")
        history: list[ChatMessage] = []
        items: list[dict[str, Any]] = []
        for stored in chain:
            output = stored.body.get("output", [])
            history += to_messages(stored.input)
            history += to_messages(output, "previous_response_id")
            items += [*stored.input, *output]
        return history, items

    async def create(self, call: ResponseCall) -> dict[str, Any]:
        """The whole answer as one Response object; stored first when asked to."""
        if call.hosted is not None:  # a tool loop: the stream's, read to its end
            batches, last = await self.start(call), None
            async for batch in batches:
                last = batch[-1]
            assert isinstance(last, ResponseEnding)  # a stream ends with its ending
            return last.response
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
        if call.hosted is None:
            started = await self.completions.start(call.completion)
            return self._events(call, started.first, started.rest, on_end)
        # Primed: its servers are connected inside a started generator, which its close
        # (or, abandoned, the loop's finalizer) always runs to its end, closing them.
        events = self._hosted_events(call, call.hosted, on_end)
        first = await anext(events)  # a failure now raises, and the generator is done
        return _primed(first, events)

    async def _hosted_events(
        self, call: ResponseCall, hosted: HostedTools, on_end: StreamEnded | None
    ) -> AsyncIterator[Events]:
        try:
            ready = await self._ready_tools(call, hosted)
            started = await self.completions.start(call.completion)
        except BaseException:
            await complete(hosted.aclose())
            raise
        events = self._events(call, started.first, started.rest, on_end, ready)
        try:
            async for batch in events:
                yield batch
        finally:
            await _aclose(events)

    async def _ready_tools(self, call: ResponseCall, hosted: HostedTools) -> Events:
        """List the servers' tools (or take an earlier list), run or deny the calls the
        client answered, and give the model call the tools and those results."""
        events: Events = []
        lists = {
            item.get("server_label"): item
            for item in call.earlier
            if item.get("type") == "mcp_list_tools" and not item.get("error")
        }
        for server in hosted.servers:
            earlier = lists.get(server.label)
            if earlier is not None:
                hosted.offer(server, listed_tools(earlier))
                continue
            item_id, index = new_id("mcpl"), len(call.output)
            events += [
                OutputItemAdded(index, list_tools_item(item_id, server.label, [])),
                McpListToolsInProgress(item_id, index),
            ]
            try:
                offered = hosted.offer(server, await server.server.tools())
                item = list_tools_item(item_id, server.label, offered)
                events.append(McpListToolsCompleted(item_id, index))
            except ToolServerError as exc:
                item = list_tools_item(item_id, server.label, [], str(exc))
                events.append(McpListToolsFailed(item_id, index))
            call.output.append(item)
            events.append(OutputItemDone(index, item))
        request = call.completion.request
        messages = list(request.messages)
        for approval in call.approvals:
            events += await self._answered(call, hosted, approval, messages)
        functions = tuple(t for t in request.tools if not hosted.owns(t.name))
        call.completion.request = dataclasses.replace(
            request, messages=messages, tools=(*functions, *hosted.definitions())
        )
        return events

    async def _answered(
        self,
        call: ResponseCall,
        hosted: HostedTools,
        approval: Approval,
        messages: list[ChatMessage],
    ) -> Events:
        """An answered approval request as an `mcp_call` item: run when approved."""
        asked = approval.request
        label, tool, arguments = asked["server_label"], asked["name"], asked["arguments"]
        item_id, index = new_id("mcp"), len(call.output)
        name = hosted.named(label, tool) or function_name(ServerTool(label, tool, "", {}))
        opened = mcp_call_item(
            item_id, label, tool, arguments, "in_progress", approval_request_id=asked["id"]
        )
        events: Events = [OutputItemAdded(index, opened)]
        tool_call = ToolCall(item_id, name, arguments)
        if not approval.approve:
            said, failed = DENIED + (f" Reason: {approval.reason}" if approval.reason else ""), True
        elif not hosted.owns(name):
            said, failed = f"The tool {tool!r} of {label!r} is not offered.", True
        else:
            events.append(McpCallInProgress(item_id, index))
            outcome = await hosted.run(tool_call)
            said, failed = outcome.content, outcome.is_error
        item = _finished(opened, said, failed)
        call.output.append(item)
        add_tool_step(messages, tool_call, f"Error: {said}" if failed else said)
        ending = McpCallFailed if failed else McpCallCompleted
        return [*events, ending(item_id, index), OutputItemDone(index, item)]

    async def _run_calls(self, call: ResponseCall, stream: _Stream) -> AsyncIterator[Events]:
        """Run the step's MCP calls, one after another; the next model call gets the
        step's answer and their results."""
        hosted = call.hosted
        assert hosted is not None
        request = call.completion.request
        results: list[ChatMessage] = []
        for index, item_id, tool_call in stream.runnable:
            yield [McpCallInProgress(item_id, index)]
            outcome = await hosted.run(tool_call)
            item = _finished(call.output[index], outcome.content, outcome.is_error)
            call.output[index] = item
            said = f"Error: {outcome.content}" if outcome.is_error else outcome.content
            results.append(ChatMessage("tool", said, tool_call_id=tool_call.id))
            ending = McpCallFailed if outcome.is_error else McpCallCompleted
            yield [ending(item_id, index), OutputItemDone(index, item)]
        answer = ChatMessage("assistant", "".join(stream.said), tuple(stream.calls))
        # A forced tool choice was for the first call: kept, the model could never answer.
        choice = request.tool_choice if request.tool_choice in (None, "auto", "none") else None
        call.completion.request = dataclasses.replace(
            request, messages=[*request.messages, answer, *results], tool_choice=choice
        )

    async def _events(
        self,
        call: ResponseCall,
        first: Delta,
        rest: AsyncIterator[Delta],
        on_end: StreamEnded | None = None,
        ready: Events | None = None,
    ) -> AsyncIterator[Events]:
        stream = _Stream(call)
        started = call.object("in_progress")  # the same object, in both events
        head: Events = [ResponseCreated(started), ResponseInProgress(started), *(ready or ())]
        try:
            steps = 0
            while True:
                delta: Delta | None = first
                while delta is not None:
                    head += stream.take(delta)
                    if head and type(delta) is not StreamEnd:
                        yield head
                        head = []
                    delta = await anext(rest, None)
                head += stream.close()
                if not stream.runnable:
                    break
                yield head
                head = []
                async for batch in self._run_calls(call, stream):
                    yield batch
                steps += 1
                if stream.stops or steps >= self.max_tool_steps:
                    break
                stream.next_step()
                await _aclose(rest)
                started_again = await self.completions.start(call.completion)
                first, rest = started_again.first, started_again.rest
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
            await _aclose(rest)
            if call.hosted is not None:
                await complete(call.hosted.aclose())
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
    message item for text, an item for each tool call, one after another. A call of an
    `mcp` tool opens an `mcp_call` item, left open to run once the model call ends
    (`runnable`), or an `mcp_approval_request` item when it needs approval (`stops`)."""

    call: ResponseCall
    item_id: str = ""
    text: list[str] = field(default_factory=list)
    tool: int | None = None  # the tool call's index, when a call's item is open
    tool_call: ToolCall | None = None
    kind: str = "function"  # the open call's item: function, mcp or approval
    arguments: list[str] = field(default_factory=list)
    # This model call's: its text, its calls, the MCP calls to run (output index, item
    # id, call), and whether the response ends after it (a call waits for the client).
    said: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    runnable: list[tuple[int, str, ToolCall]] = field(default_factory=list)
    stops: bool = False

    @property
    def _index(self) -> int:
        return len(self.call.output)

    def next_step(self) -> None:
        self.said, self.calls, self.runnable, self.stops = [], [], [], False

    def take(self, delta: Delta) -> Events:
        if type(delta) is TextDelta:
            out: Events = []
            if not self.item_id or self.tool is not None:
                out = self.close() + self._open_message()
            self.text.append(delta.text)
            self.said.append(delta.text)
            out.append(OutputTextDelta(self.item_id, self._index, delta.text))
            return out
        if type(delta) is ToolCallDelta:
            out = []
            if self.tool != delta.index:
                out = self.close() + self._open_call(delta)
            if delta.arguments:
                self.arguments.append(delta.arguments)
                if self.kind == "function":
                    out.append(
                        FunctionCallArgumentsDelta(self.item_id, self._index, delta.arguments)
                    )
                elif self.kind == "mcp":
                    out.append(McpCallArgumentsDelta(self.item_id, self._index, delta.arguments))
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
        self.tool = delta.index
        self.tool_call = ToolCall(delta.id or new_id("call"), delta.name or "", "")
        hosted = self.call.hosted
        if hosted is None or not hosted.owns(self.tool_call.name):
            self.item_id, self.kind = new_id("fc"), "function"
            item = call_item(self.item_id, self.tool_call, "in_progress")
            return [OutputItemAdded(self._index, item)]
        server, tool = hosted.offered[self.tool_call.name]
        if hosted.needs_approval(self.tool_call.name):
            self.item_id, self.kind = new_id("mcpr"), "approval"
            item = approval_request_item(self.item_id, server.label, tool.name, "")
        else:
            self.item_id, self.kind = new_id("mcp"), "mcp"
            item = mcp_call_item(self.item_id, server.label, tool.name, "", "in_progress")
        return [OutputItemAdded(self._index, item)]

    def close(self) -> Events:
        """Close the open item, if any: its `done` events; it joins the output (an MCP
        call to run joins it open: `runnable`)."""
        if not self.item_id:
            return []
        item_id, index = self.item_id, self._index
        status = "incomplete" if self.call.status == "incomplete" else "completed"
        out: Events
        if self.tool_call is not None:
            call = ToolCall(self.tool_call.id, self.tool_call.name, "".join(self.arguments))
            self.calls.append(call)
            if self.kind == "function":
                item = call_item(item_id, call, status)
                out = [FunctionCallArgumentsDone(item_id, index, call.name, call.arguments)]
                self.stops = True  # the client runs it
            else:
                hosted = self.call.hosted
                assert hosted is not None
                server, tool = hosted.offered[call.name]
                if self.kind == "approval":
                    item = approval_request_item(item_id, server.label, tool.name, call.arguments)
                    out = []
                    self.stops = True
                else:
                    item = mcp_call_item(
                        item_id, server.label, tool.name, call.arguments, "calling"
                    )
                    self.call.output.append(item)
                    self.runnable.append((index, item_id, call))
                    self._reset()
                    return [McpCallArgumentsDone(item_id, index, call.arguments)]
        else:
            text = "".join(self.text)
            item = message_item(item_id, text, status)
            out = [
                OutputTextDone(item_id, index, text),
                ContentPartDone(item_id, index, text_part(text)),
            ]
        out.append(OutputItemDone(index, item))
        self.call.output.append(item)
        self._reset()
        return out

    def _reset(self) -> None:
        self.item_id, self.text, self.tool, self.tool_call, self.arguments = "", [], None, None, []
        self.kind = "function"


def _finished(opened: dict[str, Any], said: str, failed: bool) -> dict[str, Any]:
    """An `mcp_call` item once run: its output, or its error."""
    return mcp_call_item(
        opened["id"],
        opened["server_label"],
        opened["name"],
        opened["arguments"],
        "failed" if failed else "completed",
        output=None if failed else said,
        error=said if failed else None,
        approval_request_id=opened.get("approval_request_id"),
    )


def _approvals(
    items: list[dict[str, Any]], earlier: list[dict[str, Any]], hosted: HostedTools | None
) -> list[Approval]:
    """The input's `mcp_approval_response` items, each with the request it answers (in
    the chain or the input; a 400 naming it otherwise)."""
    requests = {i.get("id"): i for i in earlier if i.get("type") == "mcp_approval_request"}
    answered = {i.get("approval_request_id") for i in earlier if i.get("type") == "mcp_call"}
    approvals: list[Approval] = []
    for index, item in enumerate(items):
        if item.get("type") != "mcp_approval_response":
            continue
        where = f"input.{index}"
        asked = requests.get(item.get("approval_request_id"))
        if asked is None:
            raise InvalidInputError(
                "no mcp_approval_request of that id in this response's chain or input",
                f"{where}.approval_request_id",
            )
        if not isinstance(item.get("approve"), bool):
            raise InvalidInputError("approve must be true or false", f"{where}.approve")
        if hosted is None or hosted.by_label(str(asked.get("server_label"))) is None:
            raise InvalidInputError(
                f"the request's server {asked.get('server_label')!r} is not among this "
                "request's mcp tools",
                f"{where}.approval_request_id",
            )
        if asked["id"] in answered or any(a.request is asked for a in approvals):
            continue  # already answered: run once
        for key in ("server_label", "name", "arguments"):
            if not isinstance(asked.get(key), str):
                raise InvalidInputError(f"the approval request needs its `{key}`", where)
        reason = item.get("reason")
        approvals.append(
            Approval(asked, item["approve"], reason if isinstance(reason, str) else None)
        )
    return approvals


async def _primed(first: Events, rest: AsyncIterator[Events]) -> AsyncIterator[Events]:
    try:
        yield first
        async for batch in rest:
            yield batch
    finally:
        await _aclose(rest)


async def _aclose(rest: AsyncIterator[Any]) -> None:
    aclose = getattr(rest, "aclose", None)
    if aclose is not None:
        await aclose()


def response_error(error: dict[str, Any]) -> dict[str, str]:
    """A Response's `error`: OpenAI's schema allows a few codes only, so ours (say
    `stream_error`) is `server_error` with our code leading its message."""
    code = str(error.get("code") or "")
    if code in ("rate_limited", "rate_limit_exceeded") or error.get("type") == "rate_limit_error":
        return {"code": "rate_limit_exceeded", "message": str(error["message"])}
    return {"code": "server_error", "message": f"{code}: {error['message']}"}


def _visible(stored_owner: str | None, owner: str | None) -> bool:
    return owner is None or stored_owner == owner

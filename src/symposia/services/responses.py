"""OpenAI's Responses API over any Symposia model, chained in Symposia's own storage.

`previous_response_id` works for every provider: a stored response keeps its input items
and its output, and a request continuing it sends the model the whole chain (each
response's input, then its output) before its own input. `instructions` are the request's
own, never carried over from a previous response (as OpenAI does). `store: false` keeps
nothing, so such a response can be neither retrieved nor continued.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from symposia.aio import complete
from symposia.api.responses_schemas import ResponsesBody
from symposia.errors import InvalidInputError, NotFoundError, SymposiaError
from symposia.orchestration.generation import CHARS_PER_TOKEN_ESTIMATE
from symposia.providers.base import Delta, StreamEnd, TextDelta
from symposia.services.completions import CompletionCall, CompletionService
from symposia.services.response_items import input_items, message_item, new_id, to_messages
from symposia.storage.sql_responses import SqlResponseRepository
from symposia.streaming.openai_errors import openai_error
from symposia.streaming.responses_events import ResponseEvents


@dataclass(slots=True)
class ResponseCall:
    """One validated `POST /v1/responses`, ready to run."""

    body: ResponsesBody
    items: list[dict[str, Any]]
    completion: CompletionCall
    owner: str | None
    id: str = field(default_factory=lambda: new_id("resp"))
    message_id: str = field(default_factory=lambda: new_id("msg"))
    created: int = field(default_factory=lambda: int(time.time()))
    parts: list[str] = field(default_factory=list)
    end: StreamEnd | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def usage(self) -> dict[str, Any]:
        end = self.end
        if end is not None and end.prompt_tokens is not None and end.completion_tokens is not None:
            prompt, completion = end.prompt_tokens, end.completion_tokens
        else:  # the provider said nothing: estimated, as everywhere else
            chars = sum(len(m.content) for m in self.completion.request.messages)
            prompt = max(1, chars // CHARS_PER_TOKEN_ESTIMATE)
            completion = len(self.text) // CHARS_PER_TOKEN_ESTIMATE
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }

    def output(self, status: str) -> list[dict[str, Any]]:
        return [message_item(self.message_id, self.text, status)] if self.parts else []

    def object(
        self, status: str, *, final: bool = False, error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The Response object, as OpenAI's schema has it, at `status`."""
        body = self.body
        finished = status in ("completed", "failed", "incomplete")
        incomplete = status == "incomplete"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": int(time.time()) if finished else None,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": self.completion.model,
            "output": self.output("incomplete" if incomplete else "completed") if final else [],
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": body.store,
            "temperature": body.temperature,
            "text": body.text or {"format": {"type": "text"}},
            "tool_choice": body.tool_choice or "auto",
            "tools": body.tools or [],
            "top_p": body.top_p,
            "truncation": "disabled",
            "usage": self.usage() if final else None,
            "user": None,
            "metadata": body.metadata or {},
        }


@dataclass(slots=True)
class ResponseService:
    completions: CompletionService
    repo: SqlResponseRepository

    async def prepare(self, body: ResponsesBody, owner: str | None) -> ResponseCall:
        """Validate everything (the chain included) before any model is called."""
        body.refuse_unhonoured()
        if body.tools:
            raise_unsupported("tools")
        if body.text and (body.text.get("format") or {}).get("type", "text") != "text":
            raise_unsupported("text.format")
        history: list[tuple[str, str]] = []
        if body.previous_response_id is not None:
            chain = await self.repo.chain(body.previous_response_id)
            if (
                not chain
                or chain[-1].id != body.previous_response_id
                or not _visible(chain[-1].owner, owner)
            ):
                raise NotFoundError(f"previous response {body.previous_response_id!r} not found")
            for stored in chain:
                history += to_messages(stored.input)
                history += to_messages(
                    [
                        item
                        for item in stored.body.get("output", [])
                        if item.get("type") == "message"
                    ],
                    "previous_response_id",
                )
        items = input_items(body.input)
        system = [("system", body.instructions)] if body.instructions else []
        completion = await self.completions.prepare(
            model=body.model,
            messages=[*system, *history, *to_messages(items)],
            temperature=body.temperature,
            top_p=body.top_p,
            max_tokens=body.max_output_tokens,
            stop=(),
            include_usage=True,
            owner=owner,
            conversation=None,
        )
        return ResponseCall(body, items, completion, owner)

    async def create(self, call: ResponseCall) -> dict[str, Any]:
        """The whole answer as one Response object; stored first when asked to."""
        async for delta in self.completions.deltas(call.completion):
            _take(call, delta)
        final = call.object(_status(call), final=True)
        await self._store(call, final)
        return final

    async def start(self, call: ResponseCall) -> AsyncIterator[bytes]:
        """Await the first delta (a failure now raises, for an HTTP error), then return
        the stream of typed events."""
        deltas = aiter(self.completions.deltas(call.completion))
        try:
            first: Delta = await anext(deltas)
        except StopAsyncIteration:
            first = StreamEnd("stop")
        return self._events(call, deltas, first)

    async def _events(
        self, call: ResponseCall, deltas: AsyncIterator[Delta], first: Delta
    ) -> AsyncIterator[bytes]:
        events = ResponseEvents()
        head = events.emit("response.created", response=call.object("in_progress"))
        head += events.emit("response.in_progress", response=call.object("in_progress"))
        item = {"output_index": 0, "item_id": call.message_id}
        try:
            delta: Delta | None = first
            while delta is not None:
                if type(delta) is TextDelta and delta.text:
                    if not call.parts:
                        head += events.emit(
                            "response.output_item.added",
                            output_index=0,
                            item={
                                **message_item(call.message_id, "", "in_progress"),
                                "content": [],
                            },
                        )
                        head += events.emit(
                            "response.content_part.added",
                            **item,
                            content_index=0,
                            part=_part(""),
                        )
                    call.parts.append(delta.text)
                    yield head + events.emit(
                        "response.output_text.delta",
                        **item,
                        content_index=0,
                        delta=delta.text,
                        logprobs=[],
                    )
                    head = b""
                else:
                    _take(call, delta)
                delta = await anext(deltas, None)
            status = _status(call)
            if call.parts:
                text = call.text
                head += events.emit(
                    "response.output_text.done", **item, content_index=0, text=text, logprobs=[]
                )
                head += events.emit(
                    "response.content_part.done", **item, content_index=0, part=_part(text)
                )
                head += events.emit(
                    "response.output_item.done",
                    output_index=0,
                    item=message_item(call.message_id, text, status_of_item(status)),
                )
            final = call.object(status, final=True)
            await complete(self._store(call, final))  # retrievable before the client sees it
            kind = "response.completed" if status == "completed" else "response.incomplete"
            end = head + events.emit(kind, response=final)
        except SymposiaError as exc:  # after output began: the response failed
            error = openai_error(exc)[1]["error"]
            failed = call.object(
                "failed", final=True, error={"code": error["code"], "message": error["message"]}
            )
            end = head + events.emit("response.failed", response=failed)
        finally:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()
        yield end

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


def raise_unsupported(name: str) -> None:
    raise InvalidInputError(f"`{name}` is not supported by /v1/responses yet", name)


def _visible(stored_owner: str | None, owner: str | None) -> bool:
    return owner is None or stored_owner == owner


def _take(call: ResponseCall, delta: Delta) -> None:
    if type(delta) is TextDelta:
        call.parts.append(delta.text)
    elif isinstance(delta, StreamEnd):
        call.end = delta


def _status(call: ResponseCall) -> str:
    reason = call.end.finish_reason if call.end is not None else None
    return "incomplete" if reason == "length" else "completed"


def status_of_item(status: str) -> str:
    return "incomplete" if status == "incomplete" else "completed"


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

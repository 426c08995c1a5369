"""`scripted/...`: a deterministic in-process provider for tests and demos.

Built-in models need no set-up: `scripted/echo` answers by quoting the last message, and
`scripted/count` streams "1 2 3 ..." up to `max_tokens` (`COUNT_UNLIMITED` when unset).
Tests register their own scripts with `add_script` (text chunks, pacing, a failure or a
stall at a given chunk), read `requests` to see exactly what the latest calls received
(the last `KEPT_REQUESTS`: it is registered in production too, so it must not keep every
request it ever got), and `streaming` to see how many calls are still being answered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from symposia.errors import ProviderError, ProviderFailure, UnknownModelError
from symposia.providers.base import (
    CompletionRequest,
    Delta,
    Feature,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from symposia.providers.request_fields import ProviderKind
from symposia.providers.utf8 import Utf8Joiner

BUILTIN_MODELS = ("echo", "count")
ECHO_QUOTE_CHARS = 80
KEPT_REQUESTS = 100
COUNT_UNLIMITED = 64  # how far `scripted/count` counts when no max_tokens was set


@dataclass(slots=True)
class Script:
    """What one scripted model does on every call.

    `chunks` are streamed one by one `delay` seconds apart (bytes are decoded incrementally,
    so a split multi-byte character can be scripted). `fail_after` raises `failure` after
    that many chunks; `stall_after` stops sending after that many chunks until cancelled.
    `respond`, when set, answers each request with text of its own instead of `chunks`
    (a model whose answer depends on what it was asked).
    """

    chunks: Sequence[str | bytes] = ()
    respond: Callable[[CompletionRequest], str] | None = None
    delay: float = 0.0
    fail_after: int | None = None
    failure: ProviderFailure | None = None
    stall_after: int | None = None
    report_usage: bool = True
    # Calls made after the text, each streamed as OpenAI does: the id and name first,
    # then the arguments in two pieces; the answer then ends with "tool_calls".
    tool_calls: Sequence[ToolCall] = ()
    # What the model does instead when the latest message is a tool's result.
    after_tool: Script | None = None
    # Why the answer ends (`length`: as a model stopped by its max_tokens); tool calls
    # make it `tool_calls`.
    finish_reason: str = "stop"


@dataclass(slots=True)
class ScriptedProvider:
    """Plays scripts instead of calling a model."""

    token_delay: float = 0.02
    name: str = "scripted"
    kind: ProviderKind = "scripted"
    # Scripts may call tools and answer JSON; a seed changes nothing of an answer that is
    # always the same.
    features: frozenset[Feature] = frozenset(
        {"tools", "seed", "response_format", "temperature", "top_p"}
    )
    scripts: dict[str, Script] = field(default_factory=dict)
    requests: deque[CompletionRequest] = field(default_factory=lambda: deque(maxlen=KEPT_REQUESTS))
    streaming: int = 0

    @property
    def configured(self) -> bool:
        return True

    def add_script(self, model: str, script: Script) -> None:
        self.scripts[model] = script

    async def models(self) -> list[str]:
        return [*BUILTIN_MODELS, *sorted(self.scripts)]

    def check_model(self, model: str) -> None:
        if model not in BUILTIN_MODELS and model not in self.scripts:
            known = ", ".join(f"scripted/{name}" for name in (*BUILTIN_MODELS, *self.scripts))
            raise UnknownModelError(
                f"unknown scripted model {model!r}; available: {known}", field="model"
            )

    def _script_for(self, request: CompletionRequest) -> Script:
        if request.model in self.scripts:
            script = self.scripts[request.model]
            answered = request.messages and request.messages[-1].role == "tool"
            if answered and script.after_tool is not None:
                script = script.after_tool
            if script.respond is None:
                return script
            words = script.respond(request).split(" ")
            chunks = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
            return replace(script, chunks=chunks, respond=None)
        if request.model == "echo":
            last = request.messages[-1].content if request.messages else ""
            words = f"You said: {last[:ECHO_QUOTE_CHARS]}".split(" ")
        elif request.model == "count":
            words = [str(n) for n in range(1, (request.max_tokens or COUNT_UNLIMITED) + 1)]
        else:
            self.check_model(request.model)
        chunks = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
        return Script(chunks=chunks[: request.max_tokens], delay=self.token_delay)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        script = self._script_for(request)
        self.streaming += 1
        try:
            async with aclosing(_play(script, request)) as deltas:
                async for delta in deltas:
                    yield delta
        finally:
            self.streaming -= 1


async def _play(script: Script, request: CompletionRequest) -> AsyncGenerator[Delta]:
    joiner = Utf8Joiner()
    sent = 0
    for index, chunk in enumerate(script.chunks):
        if script.fail_after is not None and index == script.fail_after:
            raise ProviderError(script.failure or _default_failure(request.model))
        if script.stall_after is not None and index == script.stall_after:
            await asyncio.Event().wait()
        if script.delay:
            await asyncio.sleep(script.delay)
        text = joiner.feed(chunk) if isinstance(chunk, bytes) else chunk
        if text:
            sent += 1
            yield TextDelta(text)
    if script.fail_after is not None and script.fail_after >= len(script.chunks):
        raise ProviderError(script.failure or _default_failure(request.model))
    if tail := joiner.flush():
        yield TextDelta(tail)
    for index, call in enumerate(script.tool_calls):
        half = len(call.arguments) // 2
        yield ToolCallDelta(index, call.id, call.name, call.arguments[:half])
        yield ToolCallDelta(index, arguments=call.arguments[half:])
        sent += 1
    finish = "tool_calls" if script.tool_calls else script.finish_reason
    if script.report_usage:
        prompt = sum(len(m.content.split()) for m in request.messages)
        yield StreamEnd(finish, prompt_tokens=prompt, completion_tokens=sent)
    else:
        yield StreamEnd(finish)


def _default_failure(model: str) -> ProviderFailure:
    return ProviderFailure(
        code="scripted_failure",
        message="the scripted model failed on purpose",
        provider="scripted",
        model=model,
        status=500,
        retryable=False,
    )

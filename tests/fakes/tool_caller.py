"""A fake upstream model that uses tools: asked with tools and no tool result yet, it calls
the first `calls` tools offered, each with arguments built from its JSON schema (a string
property gets `values[name]`, else "x"; numbers 1; booleans true); asked again with the
results, it answers quoting them. For the fake provider server's `responder`, in the
OpenAI and Anthropic wire formats."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tests.fakes.provider_server import FakeToolCall, Received, Reply


def arguments_for(schema: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments that satisfy `schema`'s required properties (and any named in `values`)."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    wanted = set(schema.get("required") or ()) | (set(values) & set(properties))
    arguments: dict[str, Any] = {}
    for name in sorted(wanted):
        kind = (properties.get(name) or {}).get("type", "string")
        if name in values:
            arguments[name] = values[name]
        elif kind in ("integer", "number"):
            arguments[name] = 1
        elif kind == "boolean":
            arguments[name] = True
        elif kind == "array":
            arguments[name] = []
        elif kind == "object":
            arguments[name] = {}
        else:
            arguments[name] = "x"
    return arguments


def _offered(body: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, schema) of each tool, in either wire format."""
    tools = []
    for tool in body.get("tools") or ():
        function = tool.get("function")
        if function is not None:  # OpenAI
            tools.append((function["name"], function.get("parameters") or {}))
        else:  # Anthropic
            tools.append((tool["name"], tool.get("input_schema") or {}))
    return tools


def _results(body: Mapping[str, Any]) -> list[str]:
    """The tool results the latest turn of the conversation carries, if it is one."""
    messages = body.get("messages") or []
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "tool":  # OpenAI
            results.insert(0, str(message.get("content")))
            continue
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, list):  # Anthropic
            for block in content:
                if block.get("type") == "tool_result":
                    inner = block.get("content")
                    if isinstance(inner, list):
                        inner = "".join(b.get("text", "") for b in inner)
                    results.append(str(inner))
        break
    return results


def tool_caller(
    values: Callable[[Received], Mapping[str, Any]] | Mapping[str, Any] | None = None,
    calls: int = 1,
    quote: int = 200,
    plain: str = "No tools.",
    same: bool = False,
    always: bool = False,
) -> Callable[[Received], Reply]:
    """The responder: `values` (or a function of the request giving them) fills string
    arguments; `calls` tools are called at once; an answer quotes `quote` characters of
    each result; asked without tools, it answers `plain`. `same`: the `calls` calls are
    all of the first tool; `always`: it calls again even with results (a model that
    never stops)."""

    def respond(request: Received) -> Reply:
        body = request.body or {}
        results = _results(body)
        if results and not always:
            said = " | ".join(r[:quote] for r in results)
            return Reply(tokens=["I found: ", said])
        offered = _offered(body)
        if not offered:
            return Reply(tokens=[plain])
        given = values(request) if callable(values) else (values or {})
        made = []
        chosen = [offered[0]] * calls if same else offered[:calls]
        for index, (name, schema) in enumerate(chosen):
            arguments = json.dumps(arguments_for(schema, given))
            made.append(FakeToolCall(f"call_{index}_{name}"[:40], name, (arguments,)))
        return Reply(tokens=["Let me check."], tool_calls=made)

    return respond

"""Responses API items to the messages of a model call, and an answer to output items.

Input items are messages (`{"role", "content"}`, `type: "message"` optional, content a
string or `input_text` / `output_text` parts), `function_call` items (a call the model
made, sent back as history) and `function_call_output` items (its result). Function tools
are `{"type": "function", "name", "description", "parameters", "strict"}`; `mcp` tools are
`tools.hosted`'s. The MCP items a client sends back (store false, or a whole conversation
as openai-agents does) are history too: an `mcp_call` is the model's call and its result;
`mcp_list_tools`, `mcp_approval_request` and `mcp_approval_response` say nothing to the
model (an approved request becomes an `mcp_call`). Anything else is refused with a 400
naming the item: clients trust what they send to arrive.
"""

from __future__ import annotations

import os
from typing import Any

from symposia.errors import InvalidInputError
from symposia.providers.base import ChatMessage, ResponseFormat, Tool, ToolCall, ToolChoice
from symposia.tools.servers import ServerTool
from symposia.tools.toolbox import function_name

ROLES: dict[str, Any] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
TEXT_PARTS = {"input_text", "output_text", "text"}
CHOICES = {"auto", "none", "required"}
SILENT_ITEMS = {"mcp_list_tools", "mcp_approval_request", "mcp_approval_response"}


def new_id(prefix: str) -> str:
    """`prefix_` and 32 random hex digits: as unguessable as a uuid4, at a third of its
    CPU (no UUID object), and a streamed response makes several."""
    return f"{prefix}_{os.urandom(16).hex()}"


def input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's `input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


def to_messages(items: list[dict[str, Any]], field: str = "input") -> list[ChatMessage]:
    """The chat messages the items say, in order; neighbouring function calls are one
    assistant message (parallel calls)."""
    messages: list[ChatMessage] = []
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        where = f"{field}.{i}"
        if kind == "message":
            role = ROLES.get(str(item.get("role")))
            if role is None:
                raise InvalidInputError(
                    "role must be one of user, assistant, system, developer", f"{where}.role"
                )
            messages.append(ChatMessage(role, _text(item.get("content"), f"{where}.content")))
        elif kind == "function_call":
            call = ToolCall(
                _string(item, "call_id", where),
                _string(item, "name", where),
                _string(item, "arguments", where),
            )
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant" and last.tool_calls:
                messages[-1] = ChatMessage("assistant", last.content, (*last.tool_calls, call))
            else:
                messages.append(ChatMessage("assistant", "", (call,)))
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _text(output, f"{where}.output")
            messages.append(ChatMessage("tool", text, tool_call_id=_string(item, "call_id", where)))
        elif kind == "mcp_call":
            label, name = _string(item, "server_label", where), _string(item, "name", where)
            call = ToolCall(
                _string(item, "id", where),
                function_name(ServerTool(label, name, "", {})),
                _string(item, "arguments", where),
            )
            error = item.get("error")
            said = f"Error: {error_text(error)}" if error else str(item.get("output") or "")
            add_tool_step(messages, call, said)
        elif kind in SILENT_ITEMS:
            continue
        else:
            raise InvalidInputError(f"input items of type {kind!r} are not supported", where)
    return messages


def add_tool_step(messages: list[ChatMessage], call: ToolCall, result: str) -> None:
    """`call` and its result at the end of `messages`: the call joins the assistant message
    whose results end them (calls made at once stay one message), else opens one."""
    at = len(messages)
    while at and messages[at - 1].role == "tool":
        at -= 1
    last = messages[at - 1] if at else None
    if last is not None and last.role == "assistant":
        messages[at - 1] = ChatMessage("assistant", last.content, (*last.tool_calls, call))
    else:
        messages.insert(at, ChatMessage("assistant", "", (call,)))
    messages.append(ChatMessage("tool", result, tool_call_id=call.id))


def error_text(error: Any) -> str:
    """What an `mcp_call`'s `error` says (OpenAI's error object, or a plain string)."""
    if isinstance(error, dict):
        if isinstance(error.get("message"), str):
            return str(error["message"])
        content = error.get("content")
        if isinstance(content, list):
            return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return str(content)
    return str(error)


def tools_of(tools: list[dict[str, Any]] | None) -> tuple[Tool, ...]:
    """Function tools (`mcp` tools are `tools.hosted`'s); another kind (web search, file
    search...) is refused."""
    out = []
    for i, tool in enumerate(tools or ()):
        if tool.get("type") == "mcp":
            continue
        if tool.get("type") != "function":
            raise InvalidInputError(
                f"tools of type {tool.get('type')!r} are not supported; only functions and mcp",
                f"tools.{i}.type",
            )
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a function tool needs its `name`", f"tools.{i}.name")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidInputError("parameters must be a JSON schema", f"tools.{i}.parameters")
        strict = tool.get("strict")
        out.append(
            Tool(
                name,
                tool.get("description"),
                parameters,
                strict if isinstance(strict, bool) else None,
            )
        )
    return tuple(out)


def tool_choice_of(choice: str | dict[str, Any] | None) -> ToolChoice | None:
    """`auto`, `none`, `required`, or `{"type": "function", "name": ...}` (that one)."""
    if choice is None or (isinstance(choice, str) and choice in CHOICES):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str) and name:
            return name
    if isinstance(choice, dict) and choice.get("type") == "mcp":
        label, name = choice.get("server_label"), choice.get("name")
        if isinstance(label, str) and label:
            if isinstance(name, str) and name:  # that tool, by the name the model sees
                return function_name(ServerTool(label, name, "", {}))
            return "required"  # some tool: no provider can be held to one server
    raise InvalidInputError(
        'tool_choice must be auto, none, required, {"type": "function", "name": ...} or '
        '{"type": "mcp", "server_label": ..., "name": ...}',
        "tool_choice",
    )


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidInputError(f"a {item.get('type')} item needs its `{key}`", f"{where}.{key}")
    return value


def _text(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidInputError("content must be a string or a list of text parts", field)
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidInputError(
                f"content parts of type {kind!r} are not supported", f"{field}.{j}"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidInputError("a text part needs its `text`", f"{field}.{j}.text")
        texts.append(text)
    return "".join(texts)


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """An output `message` item holding one `output_text` part."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if text or status != "in_progress" else [],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(item_id: str, call: ToolCall, status: str) -> dict[str, Any]:
    """An output `function_call` item."""
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    }


def format_of(text: dict[str, Any] | None) -> ResponseFormat | None:
    """`text.format`: `text` (None: plain text), `json_object`, or `json_schema` with its
    `name`, `schema` and `strict`."""
    spec = (text or {}).get("format") or {"type": "text"}
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "json_schema":
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise InvalidInputError("a json_schema format needs its `schema`", "text.format.schema")
        strict, name, description = spec.get("strict"), spec.get("name"), spec.get("description")
        return ResponseFormat(
            "json_schema",
            name=name if isinstance(name, str) else None,
            schema=schema,
            strict=strict if isinstance(strict, bool) else None,
            description=description if isinstance(description, str) else None,
        )
    raise InvalidInputError(
        "text.format.type must be text, json_object or json_schema", "text.format.type"
    )


def list_tools_item(
    item_id: str, label: str, tools: list[ServerTool], error: str | None = None
) -> dict[str, Any]:
    """An `mcp_list_tools` item: the tools `label`'s server offers (or why it could not)."""
    item: dict[str, Any] = {
        "id": item_id,
        "type": "mcp_list_tools",
        "server_label": label,
        "tools": [
            {
                "name": t.name,
                "description": t.description or None,
                "input_schema": t.input_schema or {"type": "object"},
                "annotations": t.annotations,
            }
            for t in tools
        ],
    }
    if error is not None:
        item["error"] = error
    return item


def listed_tools(item: dict[str, Any]) -> list[ServerTool]:
    """The tools of an `mcp_list_tools` item (sent back, or kept in the chain)."""
    label = str(item.get("server_label"))
    tools = []
    for tool in item.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            schema = tool.get("input_schema")
            annotations = tool.get("annotations")
            tools.append(
                ServerTool(
                    label,
                    tool["name"],
                    str(tool.get("description") or ""),
                    schema if isinstance(schema, dict) else {},
                    annotations if isinstance(annotations, dict) else None,
                )
            )
    return tools


def mcp_call_item(
    item_id: str,
    label: str,
    name: str,
    arguments: str,
    status: str,
    output: str | None = None,
    error: str | None = None,
    approval_request_id: str | None = None,
) -> dict[str, Any]:
    """An `mcp_call` item; an error is OpenAI's `mcp_tool_execution_error`."""
    item: dict[str, Any] = {
        "id": item_id,
        "type": "mcp_call",
        "status": status,
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "output": output,
        "error": None
        if error is None
        else {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": error}]},
    }
    if approval_request_id is not None:
        item["approval_request_id"] = approval_request_id
    return item


def approval_request_item(item_id: str, label: str, name: str, arguments: str) -> dict[str, Any]:
    """An `mcp_approval_request` item: a call that waits for the client's approval."""
    return {
        "id": item_id,
        "type": "mcp_approval_request",
        "server_label": label,
        "name": name,
        "arguments": arguments,
    }

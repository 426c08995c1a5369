"""The typed events of a streamed Response (OpenAI's Responses API), one class each.

The service yields them; `streaming.responses_events` alone turns them into SSE frames
(`event:` the type, `data:` the event with its `sequence_number`). `fields` is each
event's wire data past its type, in OpenAI's order. Text parts are always content part 0:
a message item holds one `output_text` part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _ResponseState:
    """The whole Response object, at a point of its life."""

    response: Json

    def fields(self) -> Json:
        return {"response": self.response}


@dataclass(frozen=True, slots=True)
class ResponseCreated(_ResponseState):
    type: ClassVar[Literal["response.created"]] = "response.created"


@dataclass(frozen=True, slots=True)
class ResponseInProgress(_ResponseState):
    type: ClassVar[Literal["response.in_progress"]] = "response.in_progress"


@dataclass(frozen=True, slots=True)
class ResponseCompleted(_ResponseState):
    type: ClassVar[Literal["response.completed"]] = "response.completed"


@dataclass(frozen=True, slots=True)
class ResponseIncomplete(_ResponseState):
    type: ClassVar[Literal["response.incomplete"]] = "response.incomplete"


@dataclass(frozen=True, slots=True)
class ResponseFailed(_ResponseState):
    type: ClassVar[Literal["response.failed"]] = "response.failed"


@dataclass(frozen=True, slots=True)
class _ItemEvent:
    """An output item (a message, a function call, an MCP item) as it opens or closes."""

    output_index: int
    item: Json

    def fields(self) -> Json:
        return {"output_index": self.output_index, "item": self.item}


@dataclass(frozen=True, slots=True)
class OutputItemAdded(_ItemEvent):
    type: ClassVar[Literal["response.output_item.added"]] = "response.output_item.added"


@dataclass(frozen=True, slots=True)
class OutputItemDone(_ItemEvent):
    type: ClassVar[Literal["response.output_item.done"]] = "response.output_item.done"


@dataclass(frozen=True, slots=True)
class _PartEvent:
    item_id: str
    output_index: int
    part: Json

    def fields(self) -> Json:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "content_index": 0,
            "part": self.part,
        }


@dataclass(frozen=True, slots=True)
class ContentPartAdded(_PartEvent):
    type: ClassVar[Literal["response.content_part.added"]] = "response.content_part.added"


@dataclass(frozen=True, slots=True)
class ContentPartDone(_PartEvent):
    type: ClassVar[Literal["response.content_part.done"]] = "response.content_part.done"


@dataclass(frozen=True, slots=True)
class OutputTextDelta:
    type: ClassVar[Literal["response.output_text.delta"]] = "response.output_text.delta"
    item_id: str
    output_index: int
    delta: str

    def fields(self) -> Json:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "content_index": 0,
            "delta": self.delta,
            "logprobs": [],
        }


@dataclass(frozen=True, slots=True)
class OutputTextDone:
    type: ClassVar[Literal["response.output_text.done"]] = "response.output_text.done"
    item_id: str
    output_index: int
    text: str

    def fields(self) -> Json:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "content_index": 0,
            "text": self.text,
            "logprobs": [],
        }


@dataclass(frozen=True, slots=True)
class FunctionCallArgumentsDelta:
    type: ClassVar[Literal["response.function_call_arguments.delta"]] = (
        "response.function_call_arguments.delta"
    )
    item_id: str
    output_index: int
    delta: str

    def fields(self) -> Json:
        return {"item_id": self.item_id, "output_index": self.output_index, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class FunctionCallArgumentsDone:
    type: ClassVar[Literal["response.function_call_arguments.done"]] = (
        "response.function_call_arguments.done"
    )
    item_id: str
    output_index: int
    name: str
    arguments: str

    def fields(self) -> Json:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "name": self.name,
            "arguments": self.arguments,
        }


@dataclass(frozen=True, slots=True)
class _McpStep:
    """A step of an MCP item (listing a server's tools, running a call) as it goes."""

    item_id: str
    output_index: int

    def fields(self) -> Json:
        return {"item_id": self.item_id, "output_index": self.output_index}


@dataclass(frozen=True, slots=True)
class McpListToolsInProgress(_McpStep):
    type: ClassVar[Literal["response.mcp_list_tools.in_progress"]] = (
        "response.mcp_list_tools.in_progress"
    )


@dataclass(frozen=True, slots=True)
class McpListToolsCompleted(_McpStep):
    type: ClassVar[Literal["response.mcp_list_tools.completed"]] = (
        "response.mcp_list_tools.completed"
    )


@dataclass(frozen=True, slots=True)
class McpListToolsFailed(_McpStep):
    type: ClassVar[Literal["response.mcp_list_tools.failed"]] = "response.mcp_list_tools.failed"


@dataclass(frozen=True, slots=True)
class McpCallInProgress(_McpStep):
    type: ClassVar[Literal["response.mcp_call.in_progress"]] = "response.mcp_call.in_progress"


@dataclass(frozen=True, slots=True)
class McpCallCompleted(_McpStep):
    type: ClassVar[Literal["response.mcp_call.completed"]] = "response.mcp_call.completed"


@dataclass(frozen=True, slots=True)
class McpCallFailed(_McpStep):
    type: ClassVar[Literal["response.mcp_call.failed"]] = "response.mcp_call.failed"


@dataclass(frozen=True, slots=True)
class McpCallArgumentsDelta:
    type: ClassVar[Literal["response.mcp_call_arguments.delta"]] = (
        "response.mcp_call_arguments.delta"
    )
    item_id: str
    output_index: int
    delta: str

    def fields(self) -> Json:
        return {"item_id": self.item_id, "output_index": self.output_index, "delta": self.delta}


@dataclass(frozen=True, slots=True)
class McpCallArgumentsDone:
    type: ClassVar[Literal["response.mcp_call_arguments.done"]] = "response.mcp_call_arguments.done"
    item_id: str
    output_index: int
    arguments: str

    def fields(self) -> Json:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "arguments": self.arguments,
        }


ResponseEnding = ResponseCompleted | ResponseIncomplete | ResponseFailed
ResponseEvent = (
    ResponseCreated
    | ResponseInProgress
    | ResponseEnding
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | McpListToolsInProgress
    | McpListToolsCompleted
    | McpListToolsFailed
    | McpCallInProgress
    | McpCallCompleted
    | McpCallFailed
    | McpCallArgumentsDelta
    | McpCallArgumentsDone
)
# A streamed Response's last event, by type: what an idempotent retry replays.
ENDINGS: dict[str, type[ResponseEnding]] = {
    ending.type: ending for ending in (ResponseCompleted, ResponseIncomplete, ResponseFailed)
}


def ending(kind: str, response: Json) -> ResponseEnding:
    """The last event of type `kind` (`response.completed`, ...) carrying `response`."""
    return ENDINGS[kind](response)

"""Request bodies (and paging parameters) of the HTTP API. Validation here; meaning in the
services."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from symposia.domain.models import NAME_MAX, Panel, PanelAgent
from symposia.storage.storable import unstorable


def no_nul(value: str) -> str:
    """Refuse what storage would have to alter: U+0000 and unpaired surrogates."""
    if unstorable(value):
        raise ValueError("must not contain U+0000 (NUL) or unpaired surrogate characters")
    return value


# Every client string that may be stored is one of these two.
Storable = Annotated[str, AfterValidator(no_nul)]
Text = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(no_nul)]
MODEL_MAX = 200
# `provider/model`, stripped before its length is checked, the same on every route.
ModelName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=MODEL_MAX),
    AfterValidator(no_nul),
]
# Far beyond any real listing, far below the 64-bit integers a database takes.
OFFSET_MAX = 1_000_000_000
PageLimit = Annotated[int, Query(ge=1, le=200)]
PageOffset = Annotated[int, Query(ge=0, le=OFFSET_MAX)]
# Only the ids that start so (a client resolving the start of an id a person typed).
IdPrefix = Annotated[
    str | None, Query(pattern="^[0-9a-f]{0,32}$", description="only ids starting with this")
]
TOPIC_MAX = 10_000
PROMPT_MAX = 20_000
DESCRIPTION_MAX = 2_000
MAX_FALLBACKS = 4


class _Body(BaseModel):
    # Unknown fields (an `owner`, a bot's `tools`) are refused with a 422 naming them:
    # a client trusts what it sends to take effect.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# An MCP server the operator configured (`time`), or one of its tools (`time.now`).
McpToolRef = Annotated[
    Text, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+(\.[^\s]+)?$")
]
McpToolRefs = Annotated[list[McpToolRef], Field(max_length=32)]


class BotIn(_Body):
    """A bot as a client describes it. `prompt` is an alias of `system_prompt`; a bare
    `model` may come with a separate `provider`."""

    name: Annotated[Text, StringConstraints(min_length=1, max_length=NAME_MAX)] | None = None
    # A bare model name (`o3`) may come with a separate `provider`: shorter than ModelName.
    model: Annotated[Text, StringConstraints(min_length=1, max_length=MODEL_MAX)] | None = None
    provider: Annotated[Text, StringConstraints(min_length=1, max_length=50)] | None = None
    system_prompt: Annotated[Storable, StringConstraints(max_length=PROMPT_MAX)] = Field(
        default="", validation_alias=AliasChoices("system_prompt", "prompt")
    )
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    fallbacks: list[ModelName] = Field(default_factory=list, max_length=MAX_FALLBACKS)
    description: Annotated[Storable, StringConstraints(max_length=DESCRIPTION_MAX)] = Field(
        default="", description="What the agent is for: a supervisor picks speakers by it."
    )
    kind: Literal["bot", "human"] = Field(
        default="bot",
        description=(
            "`human`: a person, whom the run waits for in their turn (they answer with "
            "POST /api/run/{id}/messages); they take no model settings."
        ),
    )
    tools: McpToolRefs = Field(
        default_factory=list,
        description="MCP servers (`time`) or tools (`time.get_current_time`) it may call.",
    )

    @model_validator(mode="after")
    def _human_has_no_model(self) -> BotIn:
        if self.kind == "human" and (self.model or self.provider or self.fallbacks or self.tools):
            raise ValueError(
                "an agent of kind `human` takes no model, provider, fallbacks or tools"
            )
        return self

    @model_validator(mode="after")
    def _join_provider(self) -> BotIn:
        if self.provider is None:
            return self
        if self.model is None:
            raise ValueError("`provider` needs a `model` too")
        prefix, sep, _ = self.model.partition("/")
        if sep and prefix != self.provider:
            raise ValueError(f"model {self.model!r} does not belong to provider {self.provider!r}")
        if not sep:
            self.model = f"{self.provider}/{self.model}"
        return self


class RunCreate(_Body):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"topic": "Should cities ban cars?", "preset": "debate"},
                {
                    "topic": "Is remote work here to stay?",
                    "bots": [{"name": "Optimist"}, {"name": "Skeptic"}],
                    "max_turns": 4,
                },
            ]
        },
    )

    topic: Annotated[Text, StringConstraints(min_length=1, max_length=TOPIC_MAX)]
    preset: Annotated[Text, StringConstraints(min_length=1, max_length=40)] | None = Field(
        default=None,
        description="Start from a preset (`GET /api/presets`); the fields given replace its own.",
    )
    bots: list[BotIn] | None = Field(default=None, min_length=2, max_length=8)
    max_turns: int = Field(default=6, ge=1)
    policy: Annotated[Text, StringConstraints(min_length=1, max_length=40)] = Field(
        default="round_robin",
        description="Who speaks when: `GET /api/policies` lists them with their settings.",
    )
    policy_config: dict[str, Any] = Field(
        default_factory=dict, description="The policy's settings; each policy documents its own."
    )
    termination: dict[str, Any] | None = Field(
        default=None,
        description=(
            "When the run ends besides `max_turns`: one condition or an `any`/`all` of them "
            '(for example `{"any": [{"mention": "TERMINATE"}, {"max_cost_usd": 0.5}]}`).'
        ),
        examples=[{"any": [{"mention": "TERMINATE"}, {"max_tokens": 20000}]}],
    )
    on_human_timeout: Literal["skip", "end"] = Field(
        default="end",
        description=(
            "When an agent of kind `human` does not answer within HUMAN_TIMEOUT_SECONDS: "
            "`end` the run (ended_by `human_timeout`) or `skip` their turn."
        ),
    )

    @model_validator(mode="after")
    def _unique_names(self) -> RunCreate:
        names = [bot.name for bot in self.bots or [] if bot.name]
        if len(names) != len(set(names)):
            raise ValueError("bot names must be unique")
        return self


class BotPatch(_Body):
    system_prompt: Annotated[Storable, StringConstraints(max_length=PROMPT_MAX)] | None = Field(
        default=None, validation_alias=AliasChoices("system_prompt", "prompt")
    )
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    model: ModelName | None = None
    max_tokens: int | None = Field(default=None, ge=1)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"system_prompt": "Argue the other side now.", "temperature": 1.1}]
        }
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class BotChange(BotPatch):
    """A change to bot `index` of a run being branched."""

    index: int = Field(ge=0, le=7)


class RunBranch(_Body):
    """Start a new run from the first `at_turn` turns of this one."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"at_turn": 2, "bots": [{"index": 1, "temperature": 1.2}]}]
        },
    )

    at_turn: int = Field(ge=0, description="How many of the original's turns the branch keeps.")
    bots: list[BotChange] = Field(
        default_factory=list, max_length=8, description="Changes to bots, as PATCH takes them."
    )
    max_turns: int | None = Field(default=None, ge=1)


# Over MAX_MESSAGE_CHARS is a 413, checked by the service; here only "not empty".
MessageText = Annotated[Text, StringConstraints(min_length=1)]


class RunSay(_Body):
    """A person's message to a running run."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"content": "Consider the cost, too.", "author": "Ana"}]},
    )

    content: MessageText = Field(validation_alias=AliasChoices("content", "message"))
    author: Annotated[Text, StringConstraints(min_length=1, max_length=NAME_MAX)] | None = Field(
        default=None, description="Who speaks; by default the caller's principal id, or `user`."
    )


class PanelAgentIn(_Body):
    """A specialist of a panel: the supervisor routes to it by its name and description."""

    name: Annotated[Text, StringConstraints(min_length=1, max_length=NAME_MAX)]
    description: Annotated[Text, StringConstraints(min_length=1, max_length=DESCRIPTION_MAX)]
    model: ModelName
    system_prompt: Annotated[Storable, StringConstraints(max_length=PROMPT_MAX)] = ""
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Unset: the conversation default (0.7)."
    )
    tools: McpToolRefs = Field(
        default_factory=list,
        description="MCP servers or `server.tool`s this agent may call (docs/tools.md).",
    )


PANEL_EXAMPLE: dict[str, Any] = {
    "agents": [
        {
            "name": "billing",
            "description": "Invoices, refunds, payment methods.",
            "model": "openai/gpt-4o-mini",
            "system_prompt": "You answer billing questions.",
        },
        {
            "name": "tech",
            "description": "Installation, errors, configuration.",
            "model": "anthropic/claude-3-5-haiku-latest",
        },
    ],
    "fallback": "supervisor",
}


class PanelIn(_Body):
    """A supervisor (the conversation's `default_model`) and its specialists: each user
    message is routed to one of them, or answered by the supervisor."""

    agents: list[PanelAgentIn] = Field(min_length=1, max_length=8)
    prompt: Annotated[Storable, StringConstraints(min_length=1, max_length=PROMPT_MAX)] | None = (
        Field(
            default=None,
            description=(
                "The routing prompt, with {agents}, {history}, {question} and {names}; "
                "unset: the documented default."
            ),
        )
    )
    max_attempts: int = Field(
        default=3, ge=1, le=5, description="Times the supervisor is asked for a valid answer."
    )
    fallback: Annotated[Text, StringConstraints(min_length=1, max_length=NAME_MAX)] = Field(
        default="supervisor",
        description="Who answers when no valid choice comes: an agent's name, or `supervisor`.",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [PANEL_EXAMPLE]})

    def to_panel(self) -> Panel:
        return Panel(
            agents=tuple(
                PanelAgent(
                    a.name, a.description, a.model, a.system_prompt, a.temperature, tuple(a.tools)
                )
                for a in self.agents
            ),
            prompt=self.prompt,
            max_attempts=self.max_attempts,
            fallback=self.fallback,
        )


class FunctionDef(_Body):
    name: Annotated[
        Text, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    ]
    description: Annotated[Storable, StringConstraints(max_length=DESCRIPTION_MAX)] | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="Its JSON schema.")
    strict: bool | None = None


class ToolDef(_Body):
    """A function the conversation's models may call, in OpenAI's chat format: the
    client runs it and sends the result as a message of role `tool`."""

    type: Literal["function"]
    function: FunctionDef


def tool_body(tool: ToolDef | str) -> dict[str, Any] | str:
    """A conversation's tool as stored: a function's definition, or an MCP reference."""
    return tool if isinstance(tool, str) else tool.model_dump(exclude_none=True)


def _distinct_tools(
    tools: list[ToolDef | str] | None,
) -> list[ToolDef | str] | None:
    names = [tool if isinstance(tool, str) else tool.function.name for tool in tools or ()]
    if len(names) != len(set(names)):
        raise ValueError("two tools have the same name")
    return tools


# A client's function (run by the client), or an MCP server or tool (run by Symposia).
Tools = Annotated[list[ToolDef | McpToolRef], Field(max_length=64), AfterValidator(_distinct_tools)]
TOOL_EXAMPLE = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class ConversationCreate(_Body):
    title: Annotated[Text, StringConstraints(max_length=500)] | None = None
    default_model: ModelName | None = None
    system_prompt: Annotated[Storable, StringConstraints(max_length=PROMPT_MAX)] | None = None
    panel: PanelIn | None = Field(
        default=None,
        description=(
            "Specialists a supervisor routes each message to; `default_model` is the "
            "supervisor. Each reply then starts with a `routing` event."
        ),
    )
    tools: Tools | None = Field(
        default=None,
        description=(
            "Functions its models may call: a reply's `tool_call` events ask for them, "
            "the client answers each with a message of role `tool`."
        ),
        examples=[[TOOL_EXAMPLE]],
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"title": "Rivers", "default_model": "local/smollm2", "system_prompt": "Be brief."},
                {
                    "title": "Support desk",
                    "default_model": "openai/gpt-4o-mini",
                    "panel": PANEL_EXAMPLE,
                },
            ]
        }
    )


class ConversationPatch(_Body):
    title: Annotated[Text, StringConstraints(max_length=500)] | None = None
    default_model: ModelName | None = None
    system_prompt: Annotated[Storable, StringConstraints(max_length=PROMPT_MAX)] | None = None
    panel: PanelIn | None = Field(
        default=None, description="A new panel; `null` removes the panel."
    )
    tools: Tools | None = Field(default=None, description="New tools; `null` removes them.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"title": "Rivers of Europe", "default_model": "local/smollm2"},
                {"panel": None},
            ]
        }
    )

    def changes(self) -> dict[str, Any]:
        """What to change: the fields sent, `panel` as a `Panel` (None: remove it)."""
        changes = self.model_dump(exclude_none=True, exclude={"panel", "tools"})
        if "panel" in self.model_fields_set:
            changes["panel"] = self.panel.to_panel() if self.panel is not None else None
        if "tools" in self.model_fields_set:
            changes["tools"] = [tool_body(t) for t in self.tools] if self.tools else None
        return changes


class MessageCreate(_Body):
    message: MessageText
    model: ModelName | None = None
    role: Literal["user", "tool"] = Field(
        default="user",
        description="`tool`: the result of the tool call `tool_call_id` the last answer asked for.",
    )
    tool_call_id: Annotated[Text, StringConstraints(min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def _tool_results_name_their_call(self) -> MessageCreate:
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a message of role `tool` needs `tool_call_id`, and only it")
        return self

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "Which is longest?", "model": "local/smollm2"}]}
    )


class RegenerateBody(_Body):
    """`model`: who answers again (another model, say); else the model first asked."""

    model: ModelName | None = None


HISTORY_MAX = 200  # earlier messages a supervisor-chat client may send with its question


class HistoryItem(BaseModel):
    """An earlier message of the supervisor chat's `history` (its other fields, a
    timestamp say, are not Symposia's and are ignored)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant"]
    content: Annotated[Storable, StringConstraints(max_length=PROMPT_MAX * 5)]


class ChatStreamRequest(_Body):
    message: MessageText
    conversation_id: Annotated[Text, StringConstraints(min_length=1, max_length=64)] | None = None
    previous_response_id: Annotated[Text, StringConstraints(min_length=1, max_length=64)] | None = (
        None
    )
    model: ModelName | None = None
    panel: PanelIn | None = Field(
        default=None,
        description=(
            "Starts the new conversation with this panel (`model` is its supervisor); "
            "only when neither `conversation_id` nor `previous_response_id` is given."
        ),
    )
    # The supervisor chat's body (docs/seeds.md): with either field, the request is in
    # its form, and so is the stream (chunks `token`, `tool_call`, `complete`, `error`).
    user_id: Annotated[Text, StringConstraints(max_length=200)] | None = Field(
        default=None,
        description="Supervisor-chat form: accepted; the owner is the signed-in principal.",
    )
    history: Annotated[list[HistoryItem], Field(max_length=HISTORY_MAX)] | None = Field(
        default=None,
        description=(
            "Supervisor-chat form: the earlier messages, stored before `message` when the "
            "conversation is new (an existing conversation's stored messages are its context)."
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"message": "Name three rivers."},
                {"message": "Which is longest?", "previous_response_id": "9a1e0c..."},
                {
                    "message": "My invoice shows the wrong amount.",
                    "model": "openai/gpt-4o-mini",
                    "panel": PANEL_EXAMPLE,
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _panel_only_for_a_new_conversation(self) -> ChatStreamRequest:
        if self.panel is not None and (self.conversation_id or self.previous_response_id):
            raise ValueError(
                "panel is set when a conversation is created; "
                "PATCH /api/conversations/{id} changes an existing one's"
            )
        return self

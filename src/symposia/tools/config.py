"""The operator's MCP servers (`MCP_SERVERS_FILE`): what may be started, by whom, and which
calls need a person's approval.

Only this file starts a stdio server: a stdio server runs with this server's rights, so no
request ever names a command. The file is JSON or YAML (by its suffix), a mapping of server
name to its definition:

    time:
      command: python
      args: ["-m", "mcp_server_time"]
      env: {TZ: UTC}
      principals: [alice, ci-key]     # default: every principal
      require_approval: never         # never | always | {tool: always|never, "*": ...}
    docs:
      url: https://mcp.example.com/mcp
      headers: {Authorization: "Bearer ..."}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from symposia.security.principals import Principal

Approval = Literal["never", "always"]
# A server name is part of a tool's name as the model sees it (`server__tool`).
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ANY_TOOL = "*"


class McpConfigError(ValueError):
    """The servers file cannot be used; the message says which entry and why."""


class McpServerConfig(BaseModel):
    """One server: a stdio `command` (with `args`, `env`, `cwd`) or a Streamable HTTP `url`
    (with `headers`); who may use it; which of its calls wait for a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    principals: tuple[str, ...] | None = None  # None: every principal
    require_approval: Approval | dict[str, Approval] = "never"
    timeout_seconds: float | None = Field(default=None, gt=0, le=3600)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either `command` (stdio) or `url` (Streamable HTTP)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("`url` must be http:// or https://")
        return self

    @field_validator("require_approval")
    @classmethod
    def _approval_keys(
        cls, value: Approval | dict[str, Approval]
    ) -> Approval | dict[str, Approval]:
        if isinstance(value, dict) and not value:
            raise ValueError("a per-tool `require_approval` names at least one tool")
        return value

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    def allows(self, principal: Principal) -> bool:
        """Whether `principal` may see and call this server (by its id or its name)."""
        return self.principals is None or bool(
            {principal.id, principal.name} & set(self.principals)
        )

    def needs_approval(self, tool: str) -> bool:
        rule = self.require_approval
        if isinstance(rule, str):
            return rule == "always"
        return rule.get(tool, rule.get(ANY_TOOL, "never")) == "always"


def parse_servers(data: object, source: str = "MCP_SERVERS_FILE") -> dict[str, McpServerConfig]:
    """The servers of an already-decoded file; `McpConfigError` names the bad entry."""
    if isinstance(data, dict) and isinstance(data.get("servers"), dict):
        data = data["servers"]  # the file may wrap them in `servers:`
    if not isinstance(data, dict):
        raise McpConfigError(f"{source}: expected a mapping of server name to definition")
    servers: dict[str, McpServerConfig] = {}
    for name, body in data.items():
        if not isinstance(name, str) or not SERVER_NAME.match(name):
            raise McpConfigError(
                f"{source}: server name {name!r} must be 1-32 letters, digits, '_' or '-'"
            )
        try:
            servers[name] = McpServerConfig.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise McpConfigError(
                f"{source}: server {name!r}{' ' + where if where else ''}: {first['msg']}"
            ) from None
    return servers


def load_servers(path: Path | None) -> dict[str, McpServerConfig]:
    """The servers of the operator's file (none without a file)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"MCP_SERVERS_FILE {path}: cannot read it ({exc.strerror})") from exc
    data: Any
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise McpConfigError(f"MCP_SERVERS_FILE {path}: not valid YAML ({exc})") from exc
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise McpConfigError(f"MCP_SERVERS_FILE {path}: not valid JSON ({exc})") from exc
    return parse_servers(data or {}, f"MCP_SERVERS_FILE {path}")

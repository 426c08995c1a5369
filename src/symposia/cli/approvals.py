"""Approving an MCP tool call from the terminal: `awaiting_input` with a `call` asks y/n."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symposia.cli.client import Api, ApiError

LineReader = Callable[[str], str | None]


def decide_call(api: Api, owner: str, data: dict[str, Any], read: LineReader) -> None:
    """A tool call waiting for approval (`owner`: the run's or conversation's path): the
    person says y or n here; a call decided already (a replayed event) is left alone."""
    call = data["call"]
    pending = api.json("GET", f"{owner}/approvals")["items"]
    if not any(p["call_id"] == call["id"] for p in pending):
        return
    answer = read(f"approve {call['server']}.{call['tool']}? [y/N] ")
    approve = (answer or "").strip().lower() in ("y", "yes")
    try:
        api.request("POST", f"{owner}/approvals/{call['id']}", json={"approve": approve})
    except ApiError as exc:
        if exc.status not in (404, 409):  # decided meanwhile, or timed out
            raise

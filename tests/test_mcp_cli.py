"""Issue 27 in the terminal client: MCP tool calls and their results are printed as the
turn goes, and a call waiting for approval is asked y/n and decided on the server."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from symposia.cli.approvals import decide_call
from symposia.cli.view import EventView
from symposia.domain.events import Event

CALL = {"id": "c1", "server": "time", "tool": "convert_time", "arguments": '{"time": "12:00"}'}


def test_tool_calls_results_and_approvals_are_printed() -> None:
    buffer = io.StringIO()
    view = EventView(Console(file=buffer, width=200, color_system=None, soft_wrap=True))
    speaker = {"turn": 0, "bot": 0, "name": "Ann"}
    view.show(Event(1, "turn_start", {**speaker, "model": "openai/gpt-4o-mini"}))
    view.show(Event(2, "tool_call", {**speaker, **CALL, "function": "time__convert_time"}))
    view.show(
        Event(3, "awaiting_input", {**speaker, "call": CALL, "until": "2026-12-07T12:00:00+00:00"})
    )
    result = {**speaker, "id": "c1", "content": "x" * 500, "is_error": False, "duration_ms": 12.4}
    view.show(Event(4, "tool_result", result))
    view.show(Event(5, "tool_result", {**result, "content": "boom", "is_error": True}))
    out = buffer.getvalue()
    assert 'tool time.convert_time({"time": "12:00"}) [c1]' in out
    assert "Ann asks to call time.convert_time" in out
    assert "approve?" in out
    assert f"← result [c1] (12 ms): {'x' * 200}…" in out
    assert "← error [c1] (12 ms): boom" in out


class _Api:
    def __init__(self, pending: list[dict[str, Any]]) -> None:
        self.pending = pending
        self.sent: list[tuple[str, str, Any]] = []

    def json(self, method: str, path: str, **_: Any) -> Any:
        return {"items": self.pending}

    def request(self, method: str, path: str, json: Any = None, **_: Any) -> None:
        self.sent.append((method, path, json))


def test_a_waiting_call_is_decided_from_the_terminal() -> None:
    api = _Api([{"call_id": "c1"}])
    asked: list[str] = []

    def read(label: str) -> str:
        asked.append(label)
        return "y"

    data = {"name": "Ann", "call": CALL}
    decide_call(api, "/api/run/r1", data, read)  # type: ignore[arg-type]
    assert asked == ["approve time.convert_time? [y/N] "]
    assert api.sent == [("POST", "/api/run/r1/approvals/c1", {"approve": True})]
    decide_call(api, "/api/run/r1", data, lambda _: "")  # type: ignore[arg-type]
    assert api.sent[-1][2] == {"approve": False}  # anything but y denies
    replayed = _Api([])
    decide_call(replayed, "/api/run/r1", data, read)  # type: ignore[arg-type]
    assert replayed.sent == []
    assert len(asked) == 1

"""The terminal client shows a turn that reached its max_tokens as such (issue 26), and
does not print a turn again when the run kept it to its last whole sentence."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from symposia.cli.client import Event
from symposia.cli.view import EventView

SPEAKER = {"turn": 0, "bot": 0, "name": "Optimist", "model": "local/smollm2"}


def _shown(*events: tuple[str, dict[str, Any]]) -> str:
    out = io.StringIO()
    view = EventView(Console(file=out, width=200, color_system=None))
    for seq, (kind, data) in enumerate(events, 1):
        view.show(Event(seq, kind, data))
    return out.getvalue()


def test_a_turn_kept_to_its_last_sentence_is_not_printed_again() -> None:
    shown = _shown(
        ("turn_start", SPEAKER),
        ("token", {**SPEAKER, "delta": "Cars pollute. They kill."}),
        ("token", {**SPEAKER, "delta": " And the"}),
        (
            "turn_complete",
            {
                **SPEAKER,
                "status": "complete",
                "content": "Cars pollute. They kill.",
                "finish_reason": "length",
            },
        ),
    )
    assert shown.count("turn 1 · Optimist") == 1
    assert shown.count("Cars pollute.") == 1
    assert "[turn length reached]" in shown


def test_a_turn_the_model_ended_has_no_mark() -> None:
    shown = _shown(
        ("turn_start", SPEAKER),
        ("token", {**SPEAKER, "delta": "Cars pollute."}),
        ("turn_complete", {**SPEAKER, "status": "complete", "content": "Cars pollute."}),
    )
    assert "Cars pollute." in shown
    assert "[" not in shown

"""How the OpenAI adapter reads streamed tool-call pieces (issue 13)."""

from __future__ import annotations

from symposia.providers.base import ToolCallDelta
from symposia.providers.openai_adapter import add_tool_call_pieces


def test_pieces_read_together_are_one_delta_per_call_and_ids_start_a_new_one() -> None:
    """Fragments of one call that arrive in one read leave as one chunk (as the text of a
    read does); a call's first piece (its id and name) and another call stay apart."""
    pieces: list[ToolCallDelta] = []
    add_tool_call_pieces(
        pieces,
        [
            {
                "index": 0,
                "id": "c0",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            },
            {"index": 0, "function": {"arguments": '{"a"'}},
            {"index": 0, "function": {"arguments": ": 1}"}},
            {"index": 1, "id": "c1", "type": "function", "function": {"name": "g"}},
            {"index": 1, "function": {"arguments": "{}"}},
        ],
    )
    assert pieces == [
        ToolCallDelta(0, "c0", "f", '{"a": 1}'),
        ToolCallDelta(1, "c1", "g", "{}"),
    ]
    add_tool_call_pieces(pieces, [{"index": 0, "function": {"arguments": "x"}}])
    assert pieces[-1] == ToolCallDelta(0, arguments="x")  # another call came between

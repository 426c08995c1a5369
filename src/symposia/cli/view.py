"""A run's or a reply's events, shown as they come: each speaker under a heading, in its
colour, its text streamed; routing, speaker choices, verdicts and errors on lines of their
own. One view serves `debate` (runs) and `chat` (replies): their events differ only in how
a speaker is named (docs/events.md)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from symposia.cli.client import Event
from symposia.cli.output import colour_of, note, speaker_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

FINAL_STATUSES = frozenset({"completed", "cancelled", "error", "interrupted"})
Key = tuple[Any, Any]


def _key(data: dict[str, Any]) -> Key:
    """A turn of a run is (turn, bot); a reply has a single speaker at a time."""
    return (data.get("turn"), data.get("bot"))


@dataclass
class EventView:
    """One speaker is shown live at a time. In a `rounds` run the agents of a round speak
    at once: the others' text is kept, and each is shown whole (then live, if it is still
    going) once the one before it has finished."""

    out: Console
    # The speaker's colour: by bot index in a run; a reply's answers take `reply_colour`.
    reply_colour: str = "cyan"
    texts: dict[Key, str] = field(default_factory=dict)  # each turn's text so far
    shown: dict[Key, int] = field(default_factory=dict)  # how much of it is printed
    starts: dict[Key, dict[str, Any]] = field(default_factory=dict)  # their turn_start
    waiting: list[Key] = field(default_factory=list)  # turns under way, not yet shown
    ended: dict[Key, dict[str, Any]] = field(default_factory=dict)  # their turn_complete
    current: Key | None = None
    mid_line: bool = False
    final: dict[str, Any] = field(default_factory=dict)  # the last run_status or done

    def show(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event.data)

    # -- text -------------------------------------------------------------------------

    def _colour(self, data: dict[str, Any]) -> str:
        return colour_of(data["bot"]) if data.get("bot") is not None else self.reply_colour

    def _line(self, text: Text) -> None:
        self._end_line()
        self.out.print(text)

    def _end_line(self) -> None:
        if self.mid_line:
            self.out.print()
            self.mid_line = False

    def _heading(self, data: dict[str, Any]) -> None:
        label = data.get("name") or "assistant"
        if data.get("turn") is not None:
            label = f"turn {data['turn'] + 1} · {label}"
        self._line(speaker_line(label, self._colour(data), data.get("model") or ""))

    def _flush(self, key: Key) -> None:
        """Print what of this turn's text is not printed yet."""
        text = self.texts.get(key, "")[self.shown.get(key, 0) :]
        self.shown[key] = len(self.texts.get(key, ""))
        if text:
            self.out.print(text, style=self._colour(self.starts.get(key, {})), end="")
            self.mid_line = not text.endswith("\n")

    def _settle(self, key: Key, content: str) -> None:
        """The turn's whole text is `content` (a snapshot, or its turn_complete): what was
        printed of it stays when it is the start of `content`, else it is printed again."""
        printed = self.texts.get(key, "")[: self.shown.get(key, 0)]
        if content and printed.startswith(content):
            # The turn kept ends at a sentence end before what was shown: its unfinished
            # tail was dropped (the turn is marked as having reached its length).
            self.texts[key] = printed
            return
        if not content.startswith(printed):
            self.shown[key] = 0
            if key == self.current:
                self._heading(self.starts.get(key, {}))
        self.texts[key] = content

    def _promote(self) -> None:
        """Show the next waiting turn: its heading and text so far, and whole when done."""
        while self.current is None and self.waiting:
            key = self.waiting.pop(0)
            self.current = key
            self._heading(self.starts[key])
            self._flush(key)
            if key in self.ended:
                self._finish(key)

    def _finish(self, key: Key) -> None:
        self._flush(key)
        ended = self.ended.pop(key)
        if ended.get("status") == "partial":
            self.out.print(note(" [partial]"), end="")
            self.mid_line = True
        elif ended.get("finish_reason") == "length":  # ended at its max_tokens
            self.out.print(note(" [turn length reached]"), end="")
            self.mid_line = True
        self._end_line()
        self.current = None

    # -- events -----------------------------------------------------------------------

    def _on_turn_start(self, data: dict[str, Any]) -> None:
        key = _key(data)
        self.starts[key], self.texts[key], self.shown[key] = data, "", 0
        self.waiting.append(key)
        self._promote()

    def _on_token(self, data: dict[str, Any]) -> None:
        key = _key(data)
        self.texts[key] = self.texts.get(key, "") + data["delta"]
        if key == self.current:
            self._flush(key)

    def _on_snapshot(self, data: dict[str, Any]) -> None:
        for message in data.get("messages", []):
            key = _key(message)
            self.starts.setdefault(key, message)
            self._settle(key, message["content"])
            if key == self.current:
                self._flush(key)

    def _on_turn_complete(self, data: dict[str, Any]) -> None:
        key = _key(data)
        self.starts.setdefault(key, data)
        self._settle(key, data.get("content") or "")
        self.ended[key] = data
        if key not in self.waiting and key != self.current:
            self.waiting.append(key)  # its turn_start came before where we joined
        if key == self.current:
            self._finish(key)
        self._promote()

    def _on_tool_call(self, data: dict[str, Any]) -> None:
        if data.get("server"):  # an MCP tool, run by the server
            name = f"{data['server']}.{data['tool']}"
            self._line(note(f"  tool {name}({_short(data['arguments'])}) [{data['id']}]"))
        else:
            self._line(note(f"  tool call {data['function']}({data['arguments']})"))

    def _on_tool_result(self, data: dict[str, Any]) -> None:
        what = "error" if data.get("is_error") else "result"
        took = f"{float(data.get('duration_ms') or 0):.0f} ms"
        self._line(note(f"  ← {what} [{data['id']}] ({took}): {_short(data['content'])}"))

    def _on_routing(self, data: dict[str, Any]) -> None:
        how = " (fallback)" if data.get("fallback") else ""
        self._line(note(f"→ routed to {data['agent']}{how}: {data.get('reason', '')}"))

    def _on_speaker_selected(self, data: dict[str, Any]) -> None:
        how = " (fallback)" if data.get("fallback") else ""
        answer = f": {data['answer']}" if data.get("answer") else ""
        self._line(note(f"→ next speaker {data['name']}{how}{answer}"))

    def _on_verdict(self, data: dict[str, Any]) -> None:
        line = note(f"verdict ({data.get('method')}): ", style="bold")
        line.append(str(data.get("answer", "")))
        if data.get("winner"):
            line.append(f"  winner: {data['winner']}", style="bold")
        if data.get("reason"):
            line.append(f"  {data['reason']}", style="dim")
        if data.get("votes"):
            votes = ", ".join(f"{answer}: {count}" for answer, count in data["votes"].items())
            line.append(f"  votes: {votes}", style="dim")
        self._line(line)

    def _on_person_message(self, data: dict[str, Any]) -> None:
        self._line(note(f"{data['author']}: {data['content']}", style="bold"))

    def _on_bot_updated(self, data: dict[str, Any]) -> None:
        self._line(note(f"{data['name']} changed from turn {data['turn'] + 1}: {data['changes']}"))

    def _on_awaiting_input(self, data: dict[str, Any]) -> None:
        until = str(data.get("until") or "")
        with contextlib.suppress(ValueError):
            until = datetime.fromisoformat(until).strftime("%H:%M:%S %Z").strip()
        call = data.get("call")
        if call:
            asked = f"{call['server']}.{call['tool']}({_short(call['arguments'])})"
            self._line(note(f"{data['name']} asks to call {asked}: approve? (until {until})"))
            return
        self._line(note(f"waiting for {data['name']} (until {until})"))

    def _on_interrupted(self, data: dict[str, Any]) -> None:
        self._line(note(f"the server generating this stopped ({data.get('reason')}); waiting"))

    def _on_resumed(self, data: dict[str, Any]) -> None:
        self._line(note(f"resumed at turn {data['turn'] + 1}"))

    def _on_error(self, data: dict[str, Any]) -> None:
        self._line(note(f"error {data.get('code')}: {data.get('message')}", style="bold red"))

    def _on_run_status(self, data: dict[str, Any]) -> None:
        if data["status"] in FINAL_STATUSES:
            self.final = data

    def _on_done(self, data: dict[str, Any]) -> None:
        self._end_line()
        if not self.final:
            self.final = data

    def ending(self) -> str:
        """`completed (ended by max_turns)`: the final status and why."""
        status = self.final.get("status", "unknown")
        why = [
            f"{name.replace('_', ' ')} {self.final[name]}"
            for name in ("ended_by", "reason", "error")
            if self.final.get(name)
        ]
        return f"{status} ({'; '.join(why)})" if why else status


SHOWN_CHARS = 200  # of a tool's arguments or result, on one line


def _short(text: str) -> str:
    """`text` on one line, cut to SHOWN_CHARS."""
    line = " ".join(str(text).split())
    return line if len(line) <= SHOWN_CHARS else f"{line[:SHOWN_CHARS]}…"

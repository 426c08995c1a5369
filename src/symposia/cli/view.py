"""A run's or a reply's events, shown as they come: each speaker under a heading, in its
colour, its text streamed; routing, speaker choices, verdicts and errors on lines of their
own. One view serves `debate` (runs) and `chat` (replies): their events differ only in how
a speaker is named (docs/events.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from symposia.cli.client import Event
from symposia.cli.output import colour_of, note, speaker_line

FINAL_STATUSES = frozenset({"completed", "cancelled", "error", "interrupted"})
Key = tuple[Any, Any]


def _key(data: dict[str, Any]) -> Key:
    """A turn of a run is (turn, bot); a reply has a single speaker at a time."""
    return (data.get("turn"), data.get("bot"))


@dataclass
class EventView:
    out: Console
    # The speaker's colour: by bot index in a run; a reply's answers take `reply_colour`.
    reply_colour: str = "cyan"
    texts: dict[Key, str] = field(default_factory=dict)
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

    def _heading(self, data: dict[str, Any], model: str | None) -> None:
        label = data.get("name") or "assistant"
        if data.get("turn") is not None:
            label = f"turn {data['turn'] + 1} · {label}"
        self._line(speaker_line(label, self._colour(data), model or ""))

    def _write(self, data: dict[str, Any], text: str) -> None:
        key = _key(data)
        if key != self.current:  # rounds: agents of a round stream at once
            self._heading(data, None)
            self.current = key
        self.texts[key] = self.texts.get(key, "") + text
        if text:
            self.out.print(text, style=self._colour(data), end="")
            self.mid_line = not text.endswith("\n")

    def _catch_up(self, data: dict[str, Any], content: str) -> None:
        """Print what of `content` has not been printed yet (after a snapshot, or when the
        tokens were not seen); a text that differs is printed whole."""
        shown = self.texts.get(_key(data), "")
        if content.startswith(shown):
            self._write(data, content[len(shown) :])
        else:
            self.texts[_key(data)] = ""
            self._write(data, content)

    # -- events -----------------------------------------------------------------------

    def _on_turn_start(self, data: dict[str, Any]) -> None:
        self._heading(data, data.get("model"))
        self.current = _key(data)
        self.texts[self.current] = ""

    def _on_token(self, data: dict[str, Any]) -> None:
        self._write(data, data["delta"])

    def _on_snapshot(self, data: dict[str, Any]) -> None:
        for message in data.get("messages", []):
            self._catch_up(message, message["content"])

    def _on_turn_complete(self, data: dict[str, Any]) -> None:
        self._catch_up(data, data.get("content") or "")
        if data.get("status") == "partial":
            self.out.print(note(" [partial]"), end="")
            self.mid_line = True
        self._end_line()
        self.current = None

    def _on_tool_call(self, data: dict[str, Any]) -> None:
        self._line(note(f"  tool call {data['function']}({data['arguments']})"))

    def _on_routing(self, data: dict[str, Any]) -> None:
        how = " (fallback)" if data.get("fallback") else ""
        self._line(note(f"→ routed to {data['agent']}{how}: {data.get('reason', '')}"))

    def _on_speaker_selected(self, data: dict[str, Any]) -> None:
        how = " (fallback)" if data.get("fallback") else ""
        answer = f": {data['answer']}" if data.get("answer") else ""
        self._line(note(f"→ next speaker {data['name']}{how}{answer}"))

    def _on_verdict(self, data: dict[str, Any]) -> None:
        line = Text(f"verdict ({data.get('method')}): ", style="bold")
        line.append(str(data.get("answer", "")))
        if data.get("winner"):
            line.append(f"  winner: {data['winner']}", style="bold")
        if data.get("reason"):
            line.append(f"  {data['reason']}", style="dim")
        if data.get("votes"):
            votes = ", ".join(f"{v.get('answer')}: {v.get('count')}" for v in data["votes"])
            line.append(f"  votes: {votes}", style="dim")
        self._line(line)

    def _on_person_message(self, data: dict[str, Any]) -> None:
        self._line(Text(f"{data['author']}: {data['content']}", style="bold"))

    def _on_bot_updated(self, data: dict[str, Any]) -> None:
        self._line(note(f"{data['name']} changed from turn {data['turn'] + 1}: {data['changes']}"))

    def _on_awaiting_input(self, data: dict[str, Any]) -> None:
        self._line(note(f"waiting for {data['name']} (until {data.get('until')})"))

    def _on_interrupted(self, data: dict[str, Any]) -> None:
        self._line(note(f"the server generating this stopped ({data.get('reason')}); waiting"))

    def _on_resumed(self, data: dict[str, Any]) -> None:
        self._line(note(f"resumed at turn {data['turn'] + 1}"))

    def _on_error(self, data: dict[str, Any]) -> None:
        self._line(Text(f"error {data.get('code')}: {data.get('message')}", style="bold red"))

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

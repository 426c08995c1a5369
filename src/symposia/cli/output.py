"""What the client commands print: rich consoles that colour a terminal and write plain
text to a pipe or a file (rich leaves escape codes out when its file is not a terminal,
and honours NO_COLOR)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# Bot i speaks in colour i (mod 8): the same bot keeps its colour across the whole run.
SPEAKER_COLOURS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "red",
    "bright_cyan",
    "bright_magenta",
)


def console(stderr: bool = False) -> Console:
    """Model text is printed as it is: no markup, no highlighting, no emoji codes, and no
    line breaks of rich's own (the terminal wraps)."""
    from rich.console import Console  # loaded on first use: `serve` never prints with it

    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True)


def colour_of(index: int | None) -> str:
    return SPEAKER_COLOURS[(index or 0) % len(SPEAKER_COLOURS)]


def speaker_line(label: str, colour: str, detail: str = "") -> Text:
    """`── turn 2 · Skeptic (openai/gpt-4o)`: the heading of a turn or a reply."""
    from rich.text import Text

    line = Text()
    line.append("── ", style="dim")
    line.append(label, style=f"bold {colour}")
    if detail:
        line.append(f" ({detail})", style="dim")
    return line


def note(text: str, style: str = "dim") -> Text:
    from rich.text import Text

    return Text(text, style=style)

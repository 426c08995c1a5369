"""A transcript as Markdown: readable as plain text, and rendered.

Every message, system prompt and setting is kept verbatim inside a fenced block whose
fence is longer than any run of backticks in it, so code blocks, line breaks and
Markdown inside a message survive as they were written. Short values on one line are
escaped instead.
"""

from __future__ import annotations

import re

from symposia.export import outline
from symposia.export.outline import AnyTranscript, Block
from symposia.export.transcript import RunTranscript

_SPECIAL = re.compile(r"([\\`*_\[\]<>#])")
_BACKTICKS = re.compile(r"`+")


def escape(text: str) -> str:
    """One line of plain text that Markdown shows as it is."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def fence(text: str, info: str = "text") -> str:
    """`text` verbatim in a fenced code block that nothing inside can close."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{info}\n{text}\n{marks}"


def _block(block: Block) -> list[str]:
    lines = [f"## {escape(block.title)}", ""]
    lines += [f"- **{escape(label)}:** {escape(value)}" for label, value in block.facts]
    if block.facts:
        lines.append("")
    for label, text in block.texts:
        lines += [f"**{escape(label)}:**", "", fence(text), ""]
    return lines


def render_markdown(transcript: AnyTranscript) -> str:
    facts, blocks = outline.head(transcript)
    lines = [f"# {escape(outline.title(transcript))}", ""]
    if isinstance(transcript, RunTranscript):
        lines += ["**Topic:**", "", fence(transcript.topic), ""]
    lines += [f"- **{escape(label)}:** {escape(value)}" for label, value in facts]
    lines.append("")
    for block in blocks:
        lines += _block(block)
    lines += ["## Transcript", ""]
    for number, entry in enumerate(transcript.messages, start=1):
        lines += [f"### {escape(outline.heading(number, entry))}", ""]
        lines += [f"*{escape(outline.meta(entry))}*", ""]
        lines += [f"- tool call: {escape(call)}" for call in outline.tool_calls(entry)]
        lines += [fence(entry.content), ""]
    lines.append(f"*Exported as {transcript.format} version {transcript.version}.*")
    return "\n".join(lines) + "\n"

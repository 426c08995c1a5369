"""A transcript as Markdown: readable as plain text, and rendered.

The head is tables (the run's settings, each participant's) under the title, with the
verdict in words first. A message's text is written as the Markdown it is, so a model's
lists, tables and code blocks render, unless it could break the document; then it is kept
verbatim in a fenced block whose fence is longer than any run of backticks in it. The rule
(`is_contained`), checked with CommonMark as markdown-it parses it:

- no heading (a message could fake a "Turn 5 · Skeptic" section), no raw HTML (a renderer
  may run it), no link reference definition (it would resolve links in other messages);
- closed: the message followed by a blank line and a paragraph renders as the message
  alone and then that paragraph, so an unclosed code fence (or anything else that would
  swallow what follows) cannot reach the next section.

System prompts and JSON settings are always fenced: they are settings, kept verbatim.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from symposia.export import outline
from symposia.export.outline import AnyTranscript, Block
from symposia.export.transcript import Entry, RunTranscript

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")
_BACKTICKS = re.compile(r"`+")
_UNSAFE = frozenset({"heading_open", "html_block", "html_inline"})
_AFTER = "after"  # the paragraph that must stay out of a contained message


@functools.cache
def _parser() -> MarkdownIt:
    """CommonMark's parser, made at the first Markdown export: importing markdown-it costs
    ~0.1 s, which a server's start should not pay."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def escape(text: str) -> str:
    """One line of plain text that Markdown shows as it is (a table cell too)."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def fence(text: str, info: str = "text") -> str:
    """`text` verbatim in a fenced code block that nothing inside can close."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{info}\n{text}\n{marks}"


def _tokens(tokens: list[Token]) -> list[Token]:
    every = []
    for token in tokens:
        every.append(token)
        every += _tokens(token.children or [])
    return every


def is_contained(text: str) -> bool:
    """Whether `text` may be written as Markdown (the module's rule)."""
    md = _parser()
    env: dict[str, object] = {}
    if any(t.type in _UNSAFE for t in _tokens(md.parse(text, env))) or env.get("references"):
        return False
    together: str = md.render(f"{text}\n\n{_AFTER}")
    apart: str = md.render(text) + md.render(_AFTER)
    return together == apart


def body(text: str) -> str:
    """A message's text for the document: as Markdown when contained, else fenced."""
    if not text.strip():
        return "*(no text)*"
    return text.strip("\n") if is_contained(text) else fence(text)


def _table(rows: list[tuple[str, str]], head: tuple[str, str] = ("Setting", "Value")) -> list[str]:
    lines = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    return lines + [f"| {escape(label)} | {escape(value)} |" for label, value in rows] + [""]


def _block(block: Block, words: bool = False) -> list[str]:
    """A titled part: its facts as a table (as a list when they are `words`, a verdict's
    sentences), then its verbatim texts."""
    lines = [f"## {escape(block.title)}", ""]
    if words:
        lines += [f"- **{escape(label)}:** {escape(value)}" for label, value in block.facts]
        lines.append("")
    elif block.facts:
        lines += _table(block.facts, block.head)
    for label, text in block.texts:
        lines += [f"**{escape(label)}:**", "", fence(text), ""]
    return lines


def _message(number: int, entry: Entry) -> list[str]:
    """One message's section: heading, a line of details, what it asked of tools, text."""
    lines = [f"### {escape(outline.heading(number, entry))}", ""]
    lines += [f"*{escape(outline.meta(entry))}*", ""]
    # Paragraphs, not a list: a message that starts with a list must not join it.
    for call in outline.tool_calls(entry):
        lines += [f"*tool call: {escape(call)}*", ""]
    lines += _tool_steps(entry)
    return [*lines, body(entry.content), ""]


def _tool_steps(entry: Entry) -> list[str]:
    """Each MCP tool call the turn ran: its line, then its result, fenced (it is data)."""
    lines: list[str] = []
    for line, result in outline.tool_steps(entry):
        lines += [f"*tool: {escape(line)}*", "", fence(result), ""]
    return lines


def render_markdown(transcript: AnyTranscript) -> str:
    facts, blocks = outline.head(transcript)
    lines = [f"# {escape(outline.title(transcript))}", ""]
    if isinstance(transcript, RunTranscript) and "\n" in transcript.topic.strip():
        lines += ["**Topic:**", "", fence(transcript.topic), ""]
    verdict = outline.verdict(transcript)
    if verdict is not None:
        lines += _block(verdict, words=True)
    kind = "Run" if isinstance(transcript, RunTranscript) else "Conversation"
    lines += [f"## {kind}", "", *_table(facts)]
    for block in blocks:
        lines += _block(block)
    lines += ["## Transcript", ""]
    for number, entry in enumerate(transcript.messages, start=1):
        lines += _message(number, entry)
    lines.append(f"*Exported as {transcript.format} version {transcript.version}.*")
    return "\n".join(lines) + "\n"

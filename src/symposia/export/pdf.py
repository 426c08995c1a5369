"""A transcript as a PDF, drawn with fpdf2 from the same outline as the Markdown.

Text is real text (selectable, searchable), set in the Noto fonts of export.fonts with
fallback per glyph: headings in the static bold, system prompts, JSON settings and a
message's fenced code in the static monospace. A paragraph in a script that needs it
(Arabic, Hebrew, the Indic and South-East Asian scripts, emoji sequences) is shaped by
HarfBuzz (uharfbuzz), so Arabic joins and right-to-left runs read right to left; others
are not, as shaping costs most of the render time of a long transcript and changes
nothing for them. Each message gets a
heading (and a bookmark); each page its number. Rendering is seconds of CPU work for a
long transcript: call it off the event loop (`export.files.render` does).
"""

from __future__ import annotations

import json
import re

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from symposia.export import outline
from symposia.export.fonts import MAIN_FAMILY, MONO_FAMILY, FontFile, fallbacks_for, main_fonts
from symposia.export.outline import AnyTranscript
from symposia.export.transcript import TRANSCRIPT, Entry, RunTranscript

# Hebrew to Myanmar, Khmer, the Arabic presentation forms, the zero-width joiner.
_NEEDS_SHAPING = re.compile(r"[\u0590-\u109f\u1780-\u17ff\ufb1d-\ufdff\ufe70-\ufeff\u200d]")
# C0/C1 controls other than the line break draw nothing useful; tabs become spaces.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A fenced code block of CommonMark (``` or ~~~, closed by the same run or the end).
_FENCE = re.compile(
    r"^(?P<marks>`{3,}|~{3,})[^\n]*\n(?P<code>.*?)(?:^(?P=marks)[`~]*[ \t]*$|\Z)", re.M | re.S
)
TAB = "    "
BODY_SIZE = 10.5
LINE = 5.2  # mm per body line
GREY = (110, 110, 110)
ACCENT = (40, 70, 140)
CODE_BACKGROUND = (243, 244, 246)
KEEP_WITH_HEADING = 22  # mm: a heading, its details line and a few lines of its text


def clean(text: str) -> str:
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\t", TAB))


class _Document(FPDF):
    """A page footer with the transcript's title and the page number."""

    def __init__(self, title: str, fallbacks: list[FontFile]) -> None:
        super().__init__(format="A4")
        self.footer_title = title
        self.set_title(title)
        self.set_creator("Symposia")
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(18, 16, 18)
        self.alias_nb_pages()
        for font in main_fonts() + fallbacks:
            self.add_font(font.family, font.style, str(font.path))
        # The main family first: a glyph the bold or the monospace face lacks is drawn in
        # the regular one before any other script's font is tried.
        self.set_fallback_fonts([MAIN_FAMILY, *(f.family for f in fallbacks)], exact_match=False)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(MAIN_FAMILY, "I", 8)
        self.set_text_color(*GREY)
        name = self.footer_title if len(self.footer_title) <= 80 else self.footer_title[:79] + "…"
        self.cell(0, 5, f"{name}  ·  page {self.page_no()} of {{nb}}", align="C")


def _paragraph(pdf: FPDF, text: str, size: float, style: str = "", height: float = LINE) -> None:
    pdf.set_font(MAIN_FAMILY, style, size)
    pdf.set_text_shaping(_NEEDS_SHAPING.search(text) is not None)
    pdf.multi_cell(0, height, clean(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _heading(pdf: FPDF, text: str, size: float, height: float) -> None:
    """A heading in the accent colour, in the static bold face."""
    pdf.set_text_color(*ACCENT)
    _paragraph(pdf, text, size, "B", height)
    pdf.set_text_color(0, 0, 0)


def _mono(pdf: FPDF, text: str, size: float = 8.5, height: float = 4.3) -> None:
    """Verbatim text (a prompt, JSON, code) in the monospace face on a light background."""
    pdf.set_font(MONO_FAMILY, "", size)
    pdf.set_text_shaping(_NEEDS_SHAPING.search(text) is not None)
    pdf.set_fill_color(*CODE_BACKGROUND)
    pdf.multi_cell(0, height, clean(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, fill=True)


def _content(pdf: FPDF, text: str) -> None:
    """A message's text: prose in the body face, each fenced code block in monospace."""
    at = 0
    for block in _FENCE.finditer(text):
        prose = text[at : block.start()].strip("\n")
        if prose:
            _paragraph(pdf, prose, BODY_SIZE)
        pdf.ln(1)
        _mono(pdf, block.group("code").rstrip("\n") or " ")
        pdf.ln(1)
        at = block.end()
    rest = text[at:].strip("\n")
    if rest or at == 0:
        _paragraph(pdf, rest or " ", BODY_SIZE)


def _fact_lines(pdf: FPDF, facts: list[tuple[str, str]]) -> None:
    pdf.set_text_color(0, 0, 0)
    for label, value in facts:
        _paragraph(pdf, f"{label}: {value}", 9.5, height=4.8)


def _verbatim(pdf: FPDF, label: str, text: str) -> None:
    pdf.set_text_color(*GREY)
    _paragraph(pdf, label, 8.5, "I", 4.5)
    pdf.set_text_color(0, 0, 0)
    _mono(pdf, text)
    pdf.ln(1.5)


def _table(pdf: FPDF, rows: list[tuple[str, str]], widths: tuple[int, int] = (38, 136)) -> None:
    """Label and value rows, compact, with light lines between them."""
    if not rows:
        return
    pdf.set_font(MAIN_FAMILY, "", 9)
    pdf.set_text_shaping(any(_NEEDS_SHAPING.search(value) for _, value in rows))
    pdf.set_draw_color(210, 210, 210)
    pdf.set_line_width(0.2)
    with pdf.table(
        col_widths=widths,
        first_row_as_headings=False,
        borders_layout="HORIZONTAL_LINES",
        line_height=4.6,
        padding=(0.8, 1.2),
        text_align="LEFT",
    ) as table:
        for label, value in rows:
            row = table.row()
            pdf.set_text_color(*GREY)
            row.cell(clean(label) or "—")
            pdf.set_text_color(0, 0, 0)
            row.cell(clean(value) or "—")
    pdf.ln(2)


def _one_line(text: str) -> str | None:
    """A JSON setting as one short line, or None when it is long or not JSON."""
    try:
        compact = json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)
    except ValueError:
        return None
    return compact if len(compact) <= 90 else None


def _head(pdf: FPDF, transcript: AnyTranscript) -> None:
    """The verdict in words, then the settings in a compact table, the participants one
    row each, edits, and the long texts (system prompts) last."""
    facts, blocks = outline.head(transcript)
    verdict = outline.verdict(transcript)
    for block in [verdict, *(b for b in blocks if b.kind == "moderation")]:
        if block is None:
            continue
        _heading(pdf, block.title, 13, 7)
        _table(pdf, block.facts)
        for label, text in block.texts:
            _verbatim(pdf, label, text)
    rows = list(facts)
    verbatim: list[tuple[str, str]] = []
    for block in (b for b in blocks if b.kind == ""):
        rows += block.facts
        for label, text in block.texts:
            short = _one_line(text)
            if short is not None:
                rows.append((label, short))
            else:
                verbatim.append((label, text))
    _heading(pdf, "Settings", 13, 7)
    _table(pdf, rows)
    participants = [b for b in blocks if b.kind == "participant"]
    if participants:
        _heading(pdf, "Participants", 13, 7)
        people = [
            (b.name, " · ".join(f"{k.lower()} {v}" for k, v in b.facts)) for b in participants
        ]
        _table(pdf, people)
        verbatim += [(f"{b.name}: {label}", text) for b in participants for label, text in b.texts]
    for block in (b for b in blocks if b.kind == "edits"):
        _heading(pdf, block.title, 13, 7)
        _table(pdf, block.facts)
        verbatim += block.texts
    for label, text in verbatim:
        _verbatim(pdf, label, text)


def _title(pdf: FPDF, transcript: AnyTranscript) -> None:
    _paragraph(pdf, outline.title(transcript), 18, "B", 9)
    if isinstance(transcript, RunTranscript) and "\n" in transcript.topic.strip():
        _verbatim(pdf, "Topic", transcript.topic)
    pdf.ln(2)


def _characters(transcript: AnyTranscript) -> str:
    """Every character the PDF may draw: the transcript's strings, as its JSON holds them
    unescaped (the outline's own words are ASCII and a few marks the main font has)."""
    return TRANSCRIPT.dump_json(transcript).decode()


def _message(pdf: FPDF, number: int, entry: Entry) -> None:
    """One message: its heading (and bookmark), a line of details, what it asked of tools,
    then its text."""
    heading = outline.heading(number, entry)
    if pdf.will_page_break(KEEP_WITH_HEADING):
        pdf.add_page()  # a heading is not left alone at the foot of a page
    pdf.ln(2.5)
    pdf.start_section(clean(heading)[:120])
    _heading(pdf, heading, 12, 6.5)
    pdf.set_text_color(*GREY)
    _paragraph(pdf, outline.meta(entry), 8.5, "I", 4.5)
    for call in outline.tool_calls(entry):
        _paragraph(pdf, f"tool call: {call}", 8.5, "I", 4.5)
    pdf.set_text_color(0, 0, 0)
    _tool_steps(pdf, entry)
    _content(pdf, entry.content)


def _tool_steps(pdf: FPDF, entry: Entry) -> None:
    """Each MCP tool call the turn ran: its line, then its result verbatim."""
    for line, result in outline.tool_steps(entry):
        _verbatim(pdf, f"tool: {line}", result)


def render_pdf(transcript: AnyTranscript) -> bytes:
    """The PDF's bytes. Blocking: run it in a worker thread."""
    title = outline.title(transcript)
    pdf = _Document(title, fallbacks_for(_characters(transcript)))
    pdf.add_page()
    _title(pdf, transcript)
    _head(pdf, transcript)
    pdf.ln(2)
    if pdf.will_page_break(2 * KEEP_WITH_HEADING):
        pdf.add_page()
    _heading(pdf, "Transcript", 13, 7)
    for number, entry in enumerate(transcript.messages, start=1):
        _message(pdf, number, entry)
    return bytes(pdf.output())

"""A transcript as a PDF, drawn with fpdf2 from the same outline as the Markdown.

Text is real text (selectable, searchable), set in the Noto fonts of export.fonts with
fallback per glyph. A paragraph in a script that needs it (Arabic, Hebrew, the Indic and
South-East Asian scripts, emoji sequences) is shaped by HarfBuzz (uharfbuzz), so Arabic
joins and right-to-left runs read right to left; others are not, as shaping costs most of
the render time of a long transcript and changes nothing for them. Each message gets a
heading (and a bookmark); each page its number. Rendering is seconds of CPU work for a
long transcript: call it off the event loop (`export.files.render` does).
"""

from __future__ import annotations

import re

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from symposia.export import outline
from symposia.export.fonts import MAIN_FAMILY, FontFile, fallbacks_for, main_fonts
from symposia.export.outline import AnyTranscript, Block
from symposia.export.transcript import TRANSCRIPT, RunTranscript

# Hebrew to Myanmar, Khmer, the Arabic presentation forms, the zero-width joiner.
_NEEDS_SHAPING = re.compile(r"[\u0590-\u109f\u1780-\u17ff\ufb1d-\ufdff\ufe70-\ufeff\u200d]")
# C0/C1 controls other than the line break draw nothing useful; tabs become spaces.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TAB = "    "
BODY_SIZE = 10.5
LINE = 5.2  # mm per body line
GREY = (110, 110, 110)
ACCENT = (40, 70, 140)


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
        if fallbacks:
            self.set_fallback_fonts([f.family for f in fallbacks], exact_match=False)

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


def _fact_lines(pdf: FPDF, facts: list[tuple[str, str]]) -> None:
    pdf.set_text_color(0, 0, 0)
    for label, value in facts:
        _paragraph(pdf, f"{label}: {value}", 9.5, height=4.8)


def _verbatim(pdf: FPDF, label: str, text: str) -> None:
    pdf.set_text_color(*GREY)
    _paragraph(pdf, label, 8.5, "I", 4.5)
    pdf.set_text_color(0, 0, 0)
    _paragraph(pdf, text, 9.5, height=4.8)
    pdf.ln(1.5)


def _block(pdf: FPDF, block: Block) -> None:
    pdf.ln(3)
    pdf.set_text_color(*ACCENT)
    _paragraph(pdf, block.title, 13, height=7)
    _fact_lines(pdf, block.facts)
    for label, text in block.texts:
        _verbatim(pdf, label, text)


def _title(pdf: FPDF, transcript: AnyTranscript) -> None:
    pdf.set_text_color(0, 0, 0)
    _paragraph(pdf, outline.title(transcript), 18, height=9)
    if isinstance(transcript, RunTranscript) and "\n" in transcript.topic.strip():
        _verbatim(pdf, "Topic", transcript.topic)
    pdf.ln(1)


def _characters(transcript: AnyTranscript) -> str:
    """Every character the PDF may draw: the transcript's strings, as its JSON holds them
    unescaped (the outline's own words are ASCII and a few marks the main font has)."""
    return TRANSCRIPT.dump_json(transcript).decode()


def render_pdf(transcript: AnyTranscript) -> bytes:
    """The PDF's bytes. Blocking: run it in a worker thread."""
    title = outline.title(transcript)
    pdf = _Document(title, fallbacks_for(_characters(transcript)))
    pdf.add_page()
    _title(pdf, transcript)
    facts, blocks = outline.head(transcript)
    _fact_lines(pdf, facts)
    for block in blocks:
        _block(pdf, block)
    pdf.ln(3)
    pdf.set_text_color(*ACCENT)
    _paragraph(pdf, "Transcript", 13, height=7)
    for number, entry in enumerate(transcript.messages, start=1):
        heading = outline.heading(number, entry)
        pdf.ln(2.5)
        pdf.start_section(clean(heading)[:120])
        pdf.set_text_color(*ACCENT)
        _paragraph(pdf, heading, 12, height=6.5)
        pdf.set_text_color(*GREY)
        _paragraph(pdf, outline.meta(entry), 8.5, "I", 4.5)
        for call in outline.tool_calls(entry):
            _paragraph(pdf, f"tool call: {call}", 8.5, "I", 4.5)
        pdf.set_text_color(0, 0, 0)
        _paragraph(pdf, entry.content or " ", BODY_SIZE)
    return bytes(pdf.output())

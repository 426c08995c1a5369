"""An export as a downloadable file: its bytes, media type and file name."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from symposia.export.markdown import render_markdown
from symposia.export.outline import AnyTranscript
from symposia.export.transcript import TRANSCRIPT

ExportFormat = Literal["json", "md", "pdf"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "pdf": "application/pdf",
}
SLUG_CHARS = 48
SHORT_ID = 8
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str

    @property
    def disposition(self) -> str:
        return f'attachment; filename="{self.filename}"'


def file_name(transcript: AnyTranscript, fmt: ExportFormat) -> str:
    """`<topic or title as ASCII words>-<first 8 of the id>.<fmt>`, safe in a header."""
    words = transcript.topic if transcript.kind == "run" else (transcript.title or "")
    ascii_words = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_words.lower())[:SLUG_CHARS].strip("-") or transcript.kind
    short_id = _NOT_SLUG.sub("", transcript.id.lower())[:SHORT_ID]
    return f"{slug}-{short_id}.{fmt}" if short_id else f"{slug}.{fmt}"


def render_json(transcript: AnyTranscript) -> bytes:
    return TRANSCRIPT.dump_json(transcript, indent=2)


def _render(transcript: AnyTranscript, fmt: ExportFormat) -> bytes:
    if fmt == "pdf":
        # fpdf2 and its fonts' readers take about 0.35 s to import: the first PDF pays it
        # (in this worker thread), not every server's and worker's start-up.
        from symposia.export.pdf import render_pdf

        return render_pdf(transcript)
    if fmt == "md":
        return render_markdown(transcript).encode()
    return render_json(transcript)


async def render(transcript: AnyTranscript, fmt: ExportFormat) -> ExportFile:
    """The file, rendered in a worker thread (a long PDF takes seconds of CPU)."""
    content = await asyncio.to_thread(_render, transcript, fmt)
    return ExportFile(content, MEDIA_TYPES[fmt], file_name(transcript, fmt))

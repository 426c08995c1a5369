"""The PDF export as a reader gets it: its text extracted back (pdftotext) holds every
turn, every script and an emoji; every glyph is drawn from an embedded font; one heading
per turn and page numbers; a page turned into a PNG under test-output/exports/ to look at.
Needs poppler-utils (pdftotext, pdftoppm)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from pypdf import PdfReader

from symposia.export import conversation_transcript, run_transcript
from symposia.export.fonts import main_fonts
from symposia.export.pdf import render_pdf
from tests.export_sample import SCRIPTS, sample_conversation, sample_run

OUT = Path(__file__).resolve().parent.parent / "test-output" / "exports"
FONT_FILES = main_fonts()[-1].path.parent
POPPLER_MISSING = "poppler-utils (pdftotext, pdftoppm) is not installed (`make test` installs it)"


@pytest.fixture(autouse=True)
def _poppler() -> None:
    """Skip without poppler-utils, except under CI, where a missing tool fails the run."""
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        if os.environ.get("CI"):
            pytest.fail(POPPLER_MISSING)
        pytest.skip(POPPLER_MISSING)


def _text(pdf: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True
    )
    assert b"Syntax Error" not in done.stderr, done.stderr
    return done.stdout.decode()


def _squeezed(text: str) -> str:
    return "".join(text.split())


def test_every_turn_script_and_emoji_is_text_in_the_pdf() -> None:
    transcript = run_transcript(sample_run())
    pdf = render_pdf(transcript)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "run.pdf").write_bytes(pdf)
    text = _text(pdf)
    flat = _squeezed(text)
    for name, sample in SCRIPTS.items():
        # Spaces may move in extraction (Arabic's joined letters come back with one inside
        # a word); the letters, in their logical order, may not.
        assert _squeezed(sample) in flat, name
    for entry in transcript.messages:
        if entry.content:
            first_line = entry.content.splitlines()[0]
            assert _squeezed(first_line) in flat, first_line
    for heading in ("Turn1·Optimist", "Turn2·Скептик", "Turn3·Optimist", "Turn4·Скептик"):
        assert heading in flat, heading
    reader = PdfReader(io.BytesIO(pdf))
    pages = len(reader.pages)
    for number in range(1, pages + 1):
        assert f"page {number} of {pages}" in reader.pages[number - 1].extract_text()
    outline = [item.title for item in reader.outline if not isinstance(item, list)]
    assert outline == [
        "Turn 1 · Optimist",
        "Message 2 · Ana",
        "Turn 2 · Скептик",
        "Turn 3 · Optimist",
        "Turn 4 · Скептик",
    ]


def test_every_font_is_embedded_and_a_page_renders_to_png() -> None:
    pdf = render_pdf(run_transcript(sample_run()))
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True, check=True)
    rows = fonts.stdout.decode().splitlines()[2:]
    assert rows
    assert all(" yes " in row for row in rows), rows  # emb: every font embedded
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "run.pdf").write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "110",
            "-f",
            "1",
            "-l",
            "2",
            str(OUT / "run.pdf"),
            str(OUT / "run"),
        ],
        check=True,
    )
    pngs = sorted(OUT.glob("run-*.png"))
    assert pngs
    assert all(p.stat().st_size > 10_000 for p in pngs)


def test_a_conversation_pdf_shows_routing_and_emoji() -> None:
    conversation, messages = sample_conversation()
    pdf = render_pdf(conversation_transcript(conversation, messages))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "conversation.pdf").write_bytes(pdf)
    flat = _squeezed(_text(pdf))
    assert "routedtobilling:arefund" in flat
    assert "Whereismyrefund?🤔" in flat
    assert _squeezed(conversation.title or "") in flat


def _first_page(pdf: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-f", "1", "-l", "1", "-", "-"],
        input=pdf,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


def test_the_pdf_opens_with_the_topic_and_the_verdict_in_words() -> None:
    """Page 1 reads: the topic, how it was decided (method, answer, winner, votes, each
    round's moderation), the settings as a table, then the debate; no verdict as JSON."""
    run = run_transcript(sample_run()).model_copy(
        update={
            "verdict": {
                "method": "vote",
                "answer": "keep cars, priced",
                "votes": {"ban cars": 1, "keep cars, priced": 2},
                "reason": "two of three answers",
                "winner": None,
            },
            "moderation": [
                {"decided": False, "reason": "both still open", "round": 0},
                {"decided": True, "winner": "Optimist", "reason": "clearer", "round": 1},
            ],
        }
    )
    pdf = render_pdf(run)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "run-verdict.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-", str(OUT / "run-verdict")],
        input=pdf,
        check=True,
    )
    page = _first_page(pdf)
    flat = _squeezed(_text(pdf))
    order = [
        "Should#citiesbancars?",
        "Verdict",
        "vote(thebots'answers,counted)",
        "keepcars,priced",
        "keepcars,priced:2;bancars:1",
        "Round1",
        "notdecided:bothstillopen",
        "decided,winnerOptimist:clearer",
        "Settings",
        '{"aggregation":"judge","rounds":2}',
        "Participants",
        "Transcript",
        "Turn1·Optimist",
    ]
    places = [flat.find(words) for words in order]
    assert -1 not in places, [w for w, p in zip(order, places, strict=True) if p == -1]
    assert places == sorted(places), order
    for raw in ('"answer"', '"votes"', '"decided"', '"winner"'):
        assert raw not in page, raw
    assert "Verdict" in page
    assert "Participants" in page  # the settings fit on page 1
    assert "$0.00018" in _text(pdf)  # money, not $0.000180


def test_headings_are_bold_and_settings_monospace_from_static_fonts() -> None:
    """The title and headings are set in the vendored static Noto Sans Bold and system
    prompts and code in Noto Sans Mono: embedded, and static files (no variable font to
    instance at run time, which took seconds)."""
    pdf = render_pdf(run_transcript(sample_run()))
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True, check=True)
    names = fonts.stdout.decode()
    assert "+NotoSansBold " in names, names
    assert "+NotoSansMono " in names, names
    reader = PdfReader(io.BytesIO(pdf))
    first = reader.pages[0].extract_text()
    # A system prompt (mono) and a heading (bold) are real text.
    assert "You argue for." in first
    assert "Participants" in first
    for path in (FONT_FILES / "NotoSans-Bold.ttf", FONT_FILES / "NotoSansMono-Regular.ttf"):
        assert "fvar" not in TTFont(path), f"{path.name} is a variable font"
    assert "SIL OPEN FONT LICENSE" in (FONT_FILES / "OFL.txt").read_text()

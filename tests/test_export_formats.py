"""The JSON and Markdown exports of a fixed transcript, against committed golden files;
the JSON against its committed, versioned JSON Schema; Markdown's messages verbatim.

Set SYMPOSIA_UPDATE_GOLDEN=1 to rewrite the golden files (then read the diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema_rs
import pytest
from markdown_it import MarkdownIt

from symposia.export import (
    TRANSCRIPT,
    conversation_transcript,
    run_transcript,
    transcript_schema,
)
from symposia.export.files import file_name, render_json
from symposia.export.fonts import fallbacks_for
from symposia.export.markdown import fence, render_markdown
from symposia.export.outline import AnyTranscript
from tests.export_sample import CODE_TURN, sample_conversation, sample_run

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SCHEMA = ROOT / "docs" / "transcript.schema.json"


def _samples() -> dict[str, AnyTranscript]:
    return {
        "run": run_transcript(sample_run(), [{"id": "child0001", "branch_turn": 2}]),
        "conversation": conversation_transcript(*sample_conversation()),
    }


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SYMPOSIA_UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == actual, f"{name} differs from its golden file"


@pytest.mark.parametrize("kind", ["run", "conversation"])
def test_json_and_markdown_match_their_golden_files(kind: str) -> None:
    transcript = _samples()[kind]
    _check_golden(f"{kind}.json", render_json(transcript).decode() + "\n")
    _check_golden(f"{kind}.md", render_markdown(transcript))


def test_the_committed_schema_is_the_models_and_validates_every_export() -> None:
    committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
    if os.environ.get("SYMPOSIA_UPDATE_GOLDEN"):
        SCHEMA.write_text(json.dumps(transcript_schema(), indent=2) + "\n", encoding="utf-8")
        committed = transcript_schema()
    assert committed == transcript_schema(), "docs/transcript.schema.json is out of date"
    validator = jsonschema_rs.validator_for(committed)
    for transcript in _samples().values():
        document = json.loads(render_json(transcript))
        validator.validate(document)
        assert document["format"] == "symposia.transcript"
        assert document["version"] == 1
    wrong = json.loads(render_json(_samples()["run"]))
    assert validator.is_valid(wrong)
    for field, value in [("version", 2), ("format", "other"), ("messages", [{"id": 1}])]:
        assert not validator.is_valid({**wrong, field: value}), field


def test_json_reads_back_into_the_same_transcript() -> None:
    for transcript in _samples().values():
        assert TRANSCRIPT.validate_json(render_json(transcript)) == transcript


def _code_blocks(markdown: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    return [t.content.removesuffix("\n") for t in tokens if t.type == "fence"]


def test_markdown_keeps_every_message_verbatim_in_its_own_block() -> None:
    for transcript in _samples().values():
        blocks = _code_blocks(render_markdown(transcript))
        for entry in transcript.messages:
            assert entry.content in blocks, entry.content
    nasty = "````\nnot a fence end\n`````x\n"
    assert _code_blocks(fence(nasty)) == [nasty]
    assert CODE_TURN in _code_blocks(render_markdown(_samples()["run"]))


def test_file_names_are_ascii_slugs_with_a_short_id() -> None:
    samples = _samples()
    assert (
        file_name(samples["run"], "pdf") == "should-cities-ban-cars-discuss-both-sides-run01234.pdf"
    )
    assert file_name(samples["conversation"], "md") == "refund-no42-conv0123.md"


def test_a_pdf_loads_only_the_fallback_fonts_its_text_needs() -> None:
    assert [f.family for f in fallbacks_for(["Plain Latin, Кириллица, Ελληνικά · — …"])] == []
    needed = fallbacks_for(["مرحبا", "שלום", "中文", "한국어", "🎉"])
    assert [f.family for f in needed] == [
        "noto-arabic",
        "noto-hebrew",
        "noto-sc",
        "noto-kr",
        "noto-emoji",
    ]

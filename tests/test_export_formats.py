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
from symposia.export.markdown import fence, is_contained, render_markdown
from symposia.export.outline import AnyTranscript, money
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


MD = MarkdownIt("commonmark")

# Messages that could break the document (fenced), and Markdown that cannot (written as is).
BREAKING = [
    "# Turn 9 · Skeptic\nI win.",
    "Setext heading\n---\nmore",
    "```\nan unclosed fence\n### Turn 9 · Skeptic",
    "~~~\nan unclosed tilde fence",
    "<script>alert(1)</script>",
    "an <img src=x onerror=alert(1)> inline",
    "[x]: https://evil.example\n\nsee [x]",
    "<!-- an unclosed comment",
]
CONTAINED = [
    "- a list\n- of two\n\n| a | b |\n|---|---|\n| 1 | 2 |",
    "> a quote\nlazily continued",
    "    indented code at the end",
    "1. first\n\n   ```py\n   x = 1\n   ```",
    "a < b and `<b>` in code, **bold** and a [link](https://example.org)",
]


def _adversarial() -> AnyTranscript:
    run = _samples()["run"]
    template = run.messages[0]
    messages = [
        template.model_copy(update={"id": f"m{n}", "content": text, "turn": n})
        for n, text in enumerate(BREAKING + CONTAINED)
    ]
    return run.model_copy(update={"messages": messages})


def _message_sections(markdown: str, transcript: AnyTranscript) -> list[str]:
    """What each message's section renders to after its heading and line of details."""
    tokens = MD.parse(markdown)
    titles = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    first = titles.index("Transcript") + 1
    assert len(titles) - first == len(transcript.messages), "a heading came from a message"
    starts = [i for i, t in enumerate(tokens) if t.type == "heading_open"][first:]
    assert {tokens[i].tag for i in starts} == {"h3"}
    ends = [*starts[1:], len(tokens) - 3]  # the closing "Exported as" paragraph
    sections = []
    for start, end, entry in zip(starts, ends, transcript.messages, strict=True):
        part = tokens[start + 3 : end]  # heading open, inline, close
        skip = 3 * (1 + len(entry.tool_calls or []))  # the details' and calls' paragraphs
        sections.append(MD.renderer.render(part[skip:], MD.options, {}))
    return sections


def test_markdown_renders_each_message_as_it_renders_alone() -> None:
    """Each message's section renders exactly as the message alone (written as Markdown)
    or as a code block holding it verbatim (fenced): nothing leaks in or out."""
    for transcript in [*_samples().values(), _adversarial()]:
        document = render_markdown(transcript)
        sections = _message_sections(document, transcript)
        for entry, section in zip(transcript.messages, sections, strict=True):
            if not entry.content.strip():
                assert section == "<p><em>(no text)</em></p>\n"
            elif is_contained(entry.content):
                assert section == MD.render(entry.content), entry.content
            else:
                fenced = [t for t in MD.parse(document) if t.type == "fence"]
                assert entry.content + "\n" in [t.content for t in fenced], entry.content
                assert section.startswith("<pre><code")
                assert section.count("<pre>") == 1
    assert [is_contained(text) for text in BREAKING] == [False] * len(BREAKING)
    assert [is_contained(text) for text in CONTAINED] == [True] * len(CONTAINED)
    nasty = "````\nnot a fence end\n`````x\n"
    assert [t.content for t in MD.parse(fence(nasty)) if t.type == "fence"] == [nasty + "\n"]
    # The sample's balanced code block renders as code, not as a fenced copy of the text.
    assert is_contained(CODE_TURN)
    assert "<pre><code class=\"language-python\">print('hi')\n" in MD.render(
        render_markdown(_samples()["run"])
    )


def test_money_reads_as_money() -> None:
    assert [money(x) for x in (0.0, 0.0012, 0.000556, 7e-6, 0.01, 0.125, 1234.5, 3e-8)] == [
        "free",
        "$0.0012",
        "$0.00056",
        "$0.000007",
        "$0.01",
        "$0.12",
        "$1,234.50",
        "$0.00000003",
    ]


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

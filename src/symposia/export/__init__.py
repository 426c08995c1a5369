"""The structured transcript of a run or a conversation, and its renderers (JSON,
Markdown, PDF)."""

from symposia.export.build import conversation_transcript, run_transcript
from symposia.export.files import ExportFile, ExportFormat, render
from symposia.export.json_export import run_summary
from symposia.export.transcript import (
    FORMAT,
    TRANSCRIPT,
    VERSION,
    ConversationTranscript,
    RunTranscript,
    transcript_schema,
)

__all__ = [
    "FORMAT",
    "TRANSCRIPT",
    "VERSION",
    "ConversationTranscript",
    "ExportFile",
    "ExportFormat",
    "RunTranscript",
    "conversation_transcript",
    "render",
    "run_summary",
    "run_transcript",
    "transcript_schema",
]

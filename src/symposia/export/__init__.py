"""Renderers of a transcript."""

from symposia.export.json_export import run_summary, run_transcript

__all__ = ["run_summary", "run_transcript"]

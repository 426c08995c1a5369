"""Recreate a run from a JSON export (`POST /api/runs/import`): stored as a finished run
of the caller, transcript, edits and settings included. Nothing is generated; to run the
debate again, branch the imported run at turn 0."""

from __future__ import annotations

from symposia.domain.models import Run
from symposia.export.restore import run_from_transcript
from symposia.export.transcript import RunTranscript
from symposia.services.runs import RunService


async def import_run(runs: RunService, document: RunTranscript, *, owner: str | None) -> Run:
    run = run_from_transcript(document, owner=owner)
    await runs.runs.add(run)
    return await runs.get(run.id, owner=owner)

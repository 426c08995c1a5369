"""Recreate a run from a JSON export (`POST /api/runs/import`): stored as a finished run
of the caller, transcript, edits and settings included. Nothing is generated; to run the
debate again, branch the imported run at turn 0."""

from __future__ import annotations

from dataclasses import replace

from symposia.domain.models import Run
from symposia.export.restore import run_from_transcript
from symposia.export.transcript import RunTranscript
from symposia.orchestration import termination
from symposia.orchestration.policies import policy_named
from symposia.services.runs import RunService


def check_settings(runs: RunService, run: Run) -> None:
    """What `RunService.create` checks of a new run's settings, so that branching an
    imported run runs nothing a new run could not: a known policy whose settings it
    takes, a valid termination, bots' max_tokens within MAX_TOKENS_LIMIT (a 422 naming
    the field otherwise). Its models are checked when a branch of it runs."""
    # On a copy: a policy may adjust the run it configures (its max_turns, say).
    policy_named(run.strategy).configure(dict(run.policy_config), replace(run))
    if run.termination is not None:
        termination.validate(run.termination)
    for index, bot in enumerate(run.bots):
        if bot.kind == "bot":
            runs.check_max_tokens(bot.max_tokens, f"bots.{index}.max_tokens")


async def import_run(runs: RunService, document: RunTranscript, *, owner: str | None) -> Run:
    run = run_from_transcript(document, owner=owner)
    check_settings(runs, run)
    await runs.runs.add(run)
    return await runs.get(run.id, owner=owner)

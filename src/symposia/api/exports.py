"""Exports of runs and conversations (JSON, Markdown, PDF), and a run's import from JSON.

Runs at `/api/export/{id}.{json,md,pdf}`, conversations at
`/api/conversations/{id}/export.{json,md,pdf}`; each is a download
(`Content-Disposition: attachment`) of the same structured transcript.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from symposia.api.deps import ConversationsDep, PrincipalDep, RunsDep, get_principal, rate_limited
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import Responses, api_errors
from symposia.api.schemas import RunCreate
from symposia.errors import InvalidInputError
from symposia.export import (
    ExportFile,
    ExportFormat,
    RunTranscript,
    conversation_transcript,
    render,
    run_transcript,
)
from symposia.services.run_import import import_run

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["exports"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 422, 503),
)

DOWNLOAD: Responses = {
    200: {
        "description": "The transcript as a file: JSON (docs/transcript.schema.json), "
        "Markdown or PDF, by the path's extension",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/markdown": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **api_errors(404),
}


def _download(file: ExportFile) -> Response:
    return Response(
        file.content,
        media_type=file.media_type,
        # nosniff: a browser takes the file as its declared type, never as a page.
        headers={"Content-Disposition": file.disposition, "X-Content-Type-Options": "nosniff"},
    )


@router.get("/export/{run_id}.{fmt}", response_class=Response, responses=DOWNLOAD)
async def export_run(
    run_id: str, fmt: ExportFormat, runs: RunsDep, principal: PrincipalDep
) -> Response:
    """The run's transcript so far (final or partial): topic, policy and termination,
    bots with their edits, every turn with its usage and cost, verdicts, how it ended."""
    run = await runs.get(run_id, owner=principal.id)
    transcript = run_transcript(run, await runs.branches(run_id))
    return _download(await render(transcript, fmt))


@router.get(
    "/conversations/{conversation_id}/export.{fmt}", response_class=Response, responses=DOWNLOAD
)
async def export_conversation(
    conversation_id: str,
    fmt: ExportFormat,
    conversations: ConversationsDep,
    principal: PrincipalDep,
) -> Response:
    """The conversation with its settings (its panel, if any) and every message, each
    answer of a panel with its `routing`."""
    conversation = await conversations.get(conversation_id, owner=principal.id)
    messages = await conversations.messages(conversation_id, None, 0, owner=principal.id)
    return _download(await render(conversation_transcript(conversation, messages), fmt))


def check_as_new_run(document: RunTranscript) -> None:
    """The document's settings as POST /api/run validates them (topic, bots, policy,
    termination), a 422 naming the field otherwise. Not its transcript, which may be
    longer than a new run allows, nor its max_turns."""
    bots = []
    for index, bot in enumerate(document.bots):
        if bot.kind == "bot" and not bot.model:
            raise InvalidInputError("a bot needs a model", f"bots.{index}.model")
        bots.append(bot.model_dump(exclude={"model"}) | {"model": bot.model or None})
    settings = {
        "topic": document.topic,
        "bots": bots,
        "policy": document.policy,
        "policy_config": document.policy_config,
        "termination": document.termination,
        "on_human_timeout": document.on_human_timeout,
    }
    try:
        RunCreate.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "bots"  # unique names
        raise InvalidInputError(f"{field}: {first['msg']}", field) from None


@router.post(
    "/runs/import",
    status_code=201,
    dependencies=[rate_limited("runs")],
    responses=api_errors(400, 413, 429),
)
async def import_run_export(
    body: RunTranscript, runs: RunsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Recreate a run from its JSON export (format `symposia.transcript`, version 1) as a
    finished run you own, with its transcript, edits and settings; nothing is generated.
    New ids; branch links are not carried. To run the debate again, branch it at turn 0."""
    check_as_new_run(body)
    run = await import_run(runs, body, owner=principal.id)
    return {
        "id": run.id,
        "status": run.status.value,
        "imported_from": body.id,
        "turn_count": run.turn_count,
        "export_url": f"/api/export/{run.id}.json",
    }

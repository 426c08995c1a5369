"""Runs: start a multi-agent conversation, watch it, steer it, stop it (exports and
imports: api.exports)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from symposia.api.deps import (
    ContainerDep,
    EventsFormDep,
    IdempotencyKeyDep,
    PrincipalDep,
    RunAdmission,
    RunsDep,
    SettingsDep,
    get_principal,
    stream_slot,
)
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.api.schemas import (
    BotIn,
    BotPatch,
    IdPrefix,
    PageLimit,
    PageOffset,
    RunBranch,
    RunCreate,
    RunSay,
)
from symposia.container import Container
from symposia.domain.models import BotConfig
from symposia.errors import InvalidInputError
from symposia.export import run_summary
from symposia.orchestration.policies import policy_named
from symposia.orchestration.presets import preset_named
from symposia.security.principals import Principal
from symposia.services.agent_tools import agent_tools
from symposia.services.idempotency import Outcome
from symposia.services.runs import RunService, default_bots
from symposia.settings import Settings
from symposia.streaming.sse import (
    encoder_named,
    finished_before,
    parse_last_event_id,
    resume_position,
)

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["runs"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 422, 503),
)


def _bot_config(bot: BotIn, index: int, settings: Settings) -> BotConfig:
    if bot.kind == "human":
        return BotConfig(
            name=bot.name or f"Person {index + 1}",
            model="",
            system_prompt="",
            kind="human",
            description=bot.description,
        )
    return BotConfig(
        name=bot.name or f"Bot {index + 1}",
        model=bot.model or settings.default_model,
        system_prompt=bot.system_prompt,
        temperature=bot.temperature,
        max_tokens=bot.max_tokens or settings.default_max_tokens,
        fallbacks=tuple(bot.fallbacks),
        description=bot.description,
        tools=tuple(bot.tools),
    )


def _check_turns(body: RunCreate, bots: list[BotConfig]) -> None:
    """A `max_turns` the client chose that is too few for the policy's rounds is refused,
    with the number needed: raising it in silence would run more turns than asked for."""
    policy = policy_named(body.policy)
    agents = sum(1 for bot in bots if bot.kind == "bot")
    needed = policy.turns_needed(body.policy_config or {}, agents)
    if body.max_turns < needed:
        raise InvalidInputError(
            f"max_turns {body.max_turns} is too few for this {body.policy} run: its "
            f"rounds and verdict take {needed} turns; give max_turns {needed} or more, or "
            "fewer policy_config.max_rounds",
            "max_turns",
        )


@router.post(
    "/run",
    status_code=201,
    responses=api_errors(400, 409, 413, 429),
)
async def create_run(
    body: RunCreate,
    runs: RunsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    container: ContainerDep,
    http: Request,
    admission: RunAdmission,
    idempotency_key: IdempotencyKeyDep = None,
) -> Response:
    """Start a run; its turns go on in the background. Watch it at `/api/stream/{id}`.
    With `Idempotency-Key`, a retry answers the run the first request started. Only a
    run started counts against RATE_LIMIT_RUNS (not one refused, by
    MAX_CONCURRENT_RUNS_PER_PRINCIPAL say, nor a retry answered from its key)."""

    async def start() -> Outcome:
        started = await _start_run(body, runs, settings, principal, container)
        await admission.count()
        return 201, started

    given = body.model_dump(mode="json", exclude_unset=True)
    answer = await container.idempotency.answer(
        idempotency_key, principal.id, http.url.path, given, start
    )
    return JSONResponse(answer.body, answer.status, answer.headers)


async def _start_run(
    body: RunCreate,
    runs: RunService,
    settings: Settings,
    principal: Principal,
    container: Container,
) -> dict[str, Any]:
    turns_chosen = "max_turns" in body.model_fields_set
    if body.preset is not None:
        base = preset_named(body.preset).with_model(settings.default_model)
        given = body.model_dump(include=body.model_fields_set, by_alias=False)
        body = RunCreate.model_validate({**base, **given})
    if body.bots is None:
        bots = default_bots(settings.default_model, settings.default_max_tokens)
    else:
        bots = [_bot_config(bot, index, settings) for index, bot in enumerate(body.bots)]
    if turns_chosen:
        _check_turns(body, bots)
    for index, bot in enumerate(bots):
        if bot.tools:
            bots[index] = replace(
                bot,
                tools=agent_tools(
                    container.tools,
                    container.providers,
                    principal,
                    bot.tools,
                    bot.model,
                    f"bots.{index}",
                    bot.name,
                ),
            )
    run = await runs.create(
        body.topic,
        bots,
        body.max_turns,
        owner=principal.id,
        policy=body.policy,
        policy_config=body.policy_config,
        ending=body.termination,
        on_human_timeout=body.on_human_timeout,
    )
    return {
        "id": run.id,
        "status": run.status.value,
        "max_turns": run.max_turns,
        "stream_url": f"/api/stream/{run.id}",
    }


@router.get("/runs")
async def list_runs(
    runs: RunsDep,
    principal: PrincipalDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
    id_prefix: IdPrefix = None,
) -> dict[str, Any]:
    """Your runs, newest first; with `id_prefix`, only those whose id starts so (echoed in
    the answer: a client resolving the start of an id a person typed)."""
    items = await runs.page(
        limit=limit, offset=offset, owner=principal.id, id_prefix=id_prefix or ""
    )
    page = {"items": [run_summary(run) for run in items], "limit": limit, "offset": offset}
    return {**page, "id_prefix": id_prefix} if id_prefix else page


@router.get("/run/{run_id}", responses=api_errors(404))
async def get_run(run_id: str, runs: RunsDep, principal: PrincipalDep) -> dict[str, Any]:
    return run_summary(await runs.get(run_id, owner=principal.id))


@router.patch("/run/{run_id}/bot/{index}", responses=api_errors(400, 404, 409, 413))
async def update_bot(
    run_id: str, index: int, body: BotPatch, runs: RunsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Change one bot; the next turn it takes uses the new settings."""
    changes = body.changes()
    if not changes:
        raise InvalidInputError(
            "nothing to change: send system_prompt, temperature, model or max_tokens", "body"
        )
    run = await runs.update_bot(run_id, index, changes, owner=principal.id)
    return {"run_id": run.id, "index": index, "bot": run.bots[index].to_dict()}


@router.post("/run/{run_id}/stop", responses=api_errors(404, 409))
async def stop_run(run_id: str, runs: RunsDep, principal: PrincipalDep) -> dict[str, Any]:
    return run_summary(await runs.stop(run_id, owner=principal.id))


@router.delete("/run/{run_id}", status_code=204, responses=api_errors(404))
async def delete_run(run_id: str, runs: RunsDep, principal: PrincipalDep) -> Response:
    """Delete the run with its transcript (another principal's is a 404). A run still
    going on is stopped first: its stream ends with `done`. Runs branched from it stay."""
    await runs.delete(run_id, owner=principal.id)
    return Response(status_code=204)


@router.get(
    "/stream/{run_id}", response_class=EventSourceResponse, responses=api_errors(400, 404, 429)
)
async def stream_run(
    request: Request,
    run_id: str,
    container: ContainerDep,
    principal: PrincipalDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="last_event_id")] = None,
    events: EventsFormDep = "named",
) -> Response:
    """Server-Sent Events of the run, replayed from the start or after `Last-Event-ID`;
    204 when that id is at or past the `done` of a finished run. `?events=unnamed` for
    `EventSource.onmessage` clients (the debate server's frames)."""
    after = parse_last_event_id(last_event_id, last_event_id_query)
    # 404: unknown, or not yours. None while the live log has the run; else the stream
    # rebuilt from storage.
    stored = await container.runs.open_stream(run_id, owner=principal.id)
    if await finished_before(stored, container.log, run_id, after):
        return Response(status_code=204)  # a finished stream's reconnection: stop
    after = await resume_position(stored, container.log, run_id, after)
    return container.stream_response(
        run_id, after, stored, stream_slot(request, container, principal), encoder_named(events)
    )


@router.post("/run/{run_id}/messages", status_code=201, responses=api_errors(400, 404, 409, 413))
async def say_in_run(
    run_id: str, body: RunSay, runs: RunsDep, principal: PrincipalDep
) -> dict[str, Any]:
    """A person speaks in a running run: the message is stored at once, streamed (as a
    `person_message` event) before the next turn, and the next speaker sees it."""
    caller = principal.display_name
    message = await runs.say(run_id, body.content, body.author, caller=caller, owner=principal.id)
    return {"run_id": run_id, "message": message.to_dict()}


@router.post("/run/{run_id}/branch", status_code=201, responses=api_errors(400, 404, 413, 429))
async def branch_run(
    run_id: str, body: RunBranch, runs: RunsDep, principal: PrincipalDep, admission: RunAdmission
) -> dict[str, Any]:
    """Start a new run from the first `at_turn` turns of this one (it may still be going on),
    with the same topic, policy and termination, and the bot changes given; the new run
    records its parent and branch point, and its stream carries its own turns."""
    changes: dict[int, dict[str, Any]] = {}
    for change in body.bots:
        if change.index in changes:
            raise InvalidInputError(f"bot {change.index} is changed twice", "bots")
        changes[change.index] = change.model_dump(exclude_none=True, exclude={"index"})
    run = await runs.branch(run_id, body.at_turn, changes, body.max_turns, owner=principal.id)
    await admission.count()
    return {
        "id": run.id,
        "status": run.status.value,
        "parent_id": run.parent_id,
        "branch_turn": run.branch_turn,
        "max_turns": run.max_turns,
        "stream_url": f"/api/stream/{run.id}",
    }

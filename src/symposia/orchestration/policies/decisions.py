"""A policy's decisions, stored with the id of the event that announces them.

A verdict (`rounds`, `moderated`) or a supervisor's choice (`selector`) is stored in the
run's `policy_state` *before* it is announced, with the id its event is about to get
(`verdict_event_id`; each choice's `event_id`), so a stream rebuilt from storage can put
the event back at that id, and a new owner never decides again. If the owner was cut off
between storing and announcing, the id is beyond the last the log has: whoever resumes
the run announces the decision then (`announce_lost_decisions`), and stores its new id.
"""

from __future__ import annotations

from typing import Any

from symposia.domain.event_types import SpeakerSelected, Verdict
from symposia.domain.models import Run
from symposia.events.replay import VERDICT_EVENT
from symposia.orchestration.policies.base import PolicyContext


async def next_event_id(run: Run, ctx: PolicyContext) -> int:
    """The id the next event of the run gets (the owner is its stream's only writer when
    its policy decides: no turn is under way)."""
    return await ctx.log.last_seq(run.id) + 1


async def store_verdict(
    run: Run, ctx: PolicyContext, state: dict[str, Any], verdict: Verdict
) -> None:
    """Store `state` with `verdict` and the id its event will have, then announce it."""
    at = await next_event_id(run, ctx)
    await ctx.save_state(run, {**state, "verdict": verdict.data(), VERDICT_EVENT: at})
    await ctx.emit(run, verdict)


async def announce_lost_decisions(run: Run, ctx: PolicyContext) -> None:
    """Announce the stored decisions the log never got (see the module docstring)."""
    state = run.policy_state
    last = await ctx.log.last_seq(run.id)
    verdict, at = state.get("verdict"), state.get(VERDICT_EVENT)
    if verdict is not None and isinstance(at, int) and at > last:
        said = await ctx.emit(run, Verdict(**verdict))
        await ctx.save_state(run, {**state, VERDICT_EVENT: said.seq})
    choices: list[dict[str, Any]] = list(state.get("choices", []))
    if choices and isinstance(choices[-1].get("event_id"), int) and choices[-1]["event_id"] > last:
        choice = choices[-1]
        selected = SpeakerSelected(
            choice["bot"], choice["name"], choice["answer"], choice["attempts"], choice["fallback"]
        )
        said = await ctx.emit(run, selected)
        choices[-1] = {**choice, "event_id": said.seq}
        await ctx.save_state(run, {**run.policy_state, "choices": choices})

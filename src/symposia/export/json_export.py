"""A run's summary as the API shows it (`GET /api/run/{id}`, `/api/runs`); the full
transcript is export.transcript."""

from __future__ import annotations

from typing import Any

from symposia.domain.models import Run


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "topic": run.topic,
        "status": run.status.value,
        "strategy": run.strategy,  # the policy's name, under its former name too
        "policy": run.strategy,
        "policy_config": run.policy_config,
        "termination": run.termination,
        "ended_by": run.ended_by,
        "verdict": run.policy_state.get("verdict"),
        "moderation": run.policy_state.get("moderation"),
        "parent_id": run.parent_id,
        "branch_turn": run.branch_turn,
        "on_human_timeout": run.on_human_timeout,
        "awaiting_until": _iso(run.awaiting_until),
        "bots": [bot.to_dict() for bot in run.bots],
        "max_turns": run.max_turns,
        "turn_count": run.turn_count,
        "error": run.error,
        "error_message": run.error_message,
        "stop_reason": run.stop_reason,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }

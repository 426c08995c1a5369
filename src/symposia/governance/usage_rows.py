"""A usage-ledger row: the table and its columns, named once for every writer (the
ledger's group commit and the sweep that records a lapsed slice as `lost`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table

from symposia.storage.tables import UsageRow

LEDGER: Table = UsageRow.__table__  # type: ignore[assignment]


def row_of(
    *,
    at: datetime,
    principal: str | None,
    key_id: str | None,
    model: str,
    provider_model: str | None,
    surface: str,
    run_id: str | None,
    conversation_id: str | None,
    response_id: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    estimated: bool,
    cost_nanos: int | None,
    latency_ms: float | None,
    ttft_ms: float | None,
    status: str,
) -> dict[str, Any]:
    """A ledger row, every column named (the insert is a Core executemany)."""
    return {
        "at": at,
        "principal": principal,
        "key_id": key_id,
        "model": model,
        "provider_model": provider_model,
        "surface": surface,
        "run_id": run_id,
        "conversation_id": conversation_id,
        "response_id": response_id,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "estimated": estimated,
        "cost_nanos": cost_nanos,
        "latency_ms": latency_ms,
        "ttft_ms": ttft_ms,
        "status": status,
    }

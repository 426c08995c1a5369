"""`GET /api/usage` (the caller's own spend and budget) and `GET /api/admin/usage`
(everyone's, grouped; JSON, or CSV with `Accept: text/csv`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from symposia.api.deps import PrincipalDep, container_from
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.domain.models import utcnow
from symposia.errors import InvalidInputError
from symposia.governance.limits import KeyLimits, period_start
from symposia.governance.usage_report import GROUPS, totals
from symposia.security.admin import require_admin

router = APIRouter(tags=["usage"], responses=api_errors(401, 503), route_class=BoundedJsonRoute)

DEFAULT_DAYS = 30


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"{field} is an ISO 8601 date or time", field) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@router.get("/api/usage", responses=api_errors(422))
async def my_usage(
    request: Request,
    principal: PrincipalDep,
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
) -> dict[str, Any]:
    """The caller's spend: this period's total, its key's budget, what is reserved and
    remaining, and the ledger by model and by day (the last 30 days unless `from`)."""
    container = container_from(request)
    now = utcnow()
    limits: KeyLimits | None = None
    key_id = principal.name if principal.kind == "api_key" else None
    if key_id is not None:
        limits = await container.meter.keys.get(key_id)
    start = _time(from_, "from") or now - timedelta(days=DEFAULT_DAYS)
    end = _time(to, "to")
    sessions = container.meter.ledger.sessions
    mine = principal.id
    by_model = await totals(sessions, ["model"], start=start, end=end, principal=mine)
    by_day = await totals(sessions, ["day", "model"], start=start, end=end, principal=mine)
    budget = (limits or KeyLimits(key_id or "")).to_dict(now)
    if limits is None:
        begun = period_start("none", now)
        spent = await totals(sessions, [], start=begun, principal=mine)
        budget["spent_usd"] = spent[0]["cost_usd"] if spent else 0.0
    return {
        "principal": principal.id,
        "key": key_id,
        "budget_period": budget["budget_period"],
        "period_start": budget["period_start"],
        "max_budget_usd": budget["max_budget_usd"],
        "spent_usd": budget["spent_usd"],
        "reserved_usd": budget["reserved_usd"],
        "remaining_usd": budget["remaining_usd"],
        "from": start.isoformat(),
        "to": end.isoformat() if end else None,
        "by_model": by_model,
        "by_day": by_day,
    }


@router.get("/api/admin/usage", tags=["admin"], responses=api_errors(404, 422))
async def all_usage(
    request: Request,
    principal: PrincipalDep,
    group_by: str = "key,model,day",
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
    key: str | None = None,
) -> Response:
    """Everyone's usage, grouped (`group_by` of key, model, day, principal, surface,
    status), within `from` and `to`; CSV when asked with `Accept: text/csv`."""
    container = container_from(request)
    await require_admin(principal, container.settings, container.meter.keys)
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or len(set(groups)) != len(groups):
        raise InvalidInputError(
            f"group_by takes distinct names of: {', '.join(GROUPS)}", "group_by"
        )
    rows = await totals(
        container.meter.ledger.sessions,
        groups,
        start=_time(from_, "from"),
        end=_time(to, "to"),
        key_id=key,
    )
    if "text/csv" in request.headers.get("accept", ""):
        out = io.StringIO()
        columns = [*groups, "calls", "prompt_tokens", "completion_tokens", "cost_usd"]
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse({"group_by": groups, "items": rows})

"""The turn policies a run may follow."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Depends

from symposia.api.deps import get_principal
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.orchestration.policies import POLICIES
from symposia.orchestration.presets import PRESETS

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["runs"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 503),
)


@router.get("/presets")
async def list_presets() -> dict[str, Any]:
    """The presets a run may start from (`"preset": name` in `POST /api/run`): what each
    is, and the run body it stands for (its bots take the server's DEFAULT_MODEL)."""
    return {
        "items": [
            {"name": preset.name, "description": preset.description, "body": preset.body}
            for preset in PRESETS.values()
        ]
    }


@router.get("/policies")
async def list_policies() -> dict[str, Any]:
    """The turn policies a run may name in `policy`, each with what it does (its settings,
    `policy_config`, are described there and in the project's docs/policies.md)."""
    return {
        "items": [
            {"name": name, "description": inspect.getdoc(type(policy)) or ""}
            for name, policy in sorted(POLICIES.items())
        ]
    }

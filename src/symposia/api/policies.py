"""The turn policies a run may follow."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Depends

from symposia.api.deps import SettingsDep, get_principal
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.orchestration.policies import POLICIES
from symposia.orchestration.presets import PRESETS
from symposia.services.runs import default_bots

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["runs"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 503),
)


@router.get("/presets")
async def list_presets(settings: SettingsDep) -> dict[str, Any]:
    """The presets a run may start from (`"preset": name` in `POST /api/run`): what each
    is, and the run body it stands for (its bots take the server's DEFAULT_MODEL).
    `default` is the body of a run that names no bots: the page's form starts from it, so
    its first debate has the same roles as the API's."""
    bots = default_bots(settings.default_model, settings.default_max_tokens)
    return {
        "items": [
            {"name": preset.name, "description": preset.description, "body": preset.body}
            for preset in PRESETS.values()
        ],
        "default": {
            "description": "what a run that names no bots gets",
            "body": {"bots": [bot.to_dict() for bot in bots]},
        },
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

"""What models this server can use right now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from symposia.api.deps import ContainerDep, get_principal
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors

router = APIRouter(
    route_class=BoundedJsonRoute,
    prefix="/api",
    tags=["models"],
    dependencies=[Depends(get_principal)],
    responses=api_errors(401, 503),
)


@router.get("/models")
async def list_models(container: ContainerDep) -> dict[str, Any]:
    """Each configured provider's models (cached for MODELS_CACHE_SECONDS), as `provider/model`;
    a provider that fails to list is reported in `providers`, not fatal."""
    return await container.models.listing()

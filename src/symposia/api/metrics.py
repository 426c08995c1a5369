"""Prometheus metrics: open by default, behind authentication with METRICS_PUBLIC=false."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from symposia.api.deps import container_from, get_principal
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors

router = APIRouter(route_class=BoundedJsonRoute, tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse, responses=api_errors(401))
async def metrics(request: Request) -> Response:
    container = container_from(request)
    if not container.settings.metrics_public:
        await get_principal(request)
    return Response(container.metrics.render(), media_type=container.metrics.content_type)

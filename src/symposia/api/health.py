"""Liveness for monitors: the service is up and which providers can serve."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from symposia import __version__
from symposia.api.deps import ContainerDep
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.container import Container

router = APIRouter(route_class=BoundedJsonRoute, tags=["health"])


DB_CHECK_TIMEOUT_SECONDS = 2.0


async def _database_ok(container: Container) -> bool:
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS), container.engine.connect() as db:
            await db.execute(text("SELECT 1"))
        return True
    except (SQLAlchemyError, OSError, TimeoutError):
        return False


@router.get("/health")
async def health(container: ContainerDep) -> JSONResponse:
    """200 when the service can work; 503 when the database is down. No provider is called."""
    database = await _database_ok(container)
    redis = None
    if container.limiter.uses_redis:
        redis = "ok" if await container.limiter.healthy() else "degraded"
    body: dict[str, Any] = {
        "status": "ok" if database and redis != "degraded" else "degraded",
        "database": "ok" if database else "unavailable",
        "redis": redis,
        "version": container.settings.reported_version,
        "default_model": container.settings.default_model,
        "providers": container.providers.configured(),
        "active_runs": container.runs.active_count,
        "active_streams": container.streams.count,
    }
    if container.tools.servers:
        body["mcp_servers"] = container.tools.health()
    if container.settings.version:
        body["server_version"] = __version__  # what runs, beside the VERSION an operator set
    if container.settings.environment:
        body["environment"] = container.settings.environment
    return JSONResponse(body, status_code=200 if database else 503)

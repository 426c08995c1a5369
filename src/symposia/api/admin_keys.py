"""`/api/admin/keys`: create, list, show, update and revoke API keys with their limits.
Admins only (`security.admin`); anyone else gets 404."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from symposia.api.deps import PrincipalDep, container_from
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.api.responses import api_errors
from symposia.container import Container
from symposia.domain.models import utcnow
from symposia.errors import ConflictError, NotFoundError
from symposia.governance.key_changes import MAX_BUDGET_USD, MAX_LIMIT, MAX_MODELS, changes_of
from symposia.governance.limits import KeyLimits
from symposia.security.admin import require_admin
from symposia.security.principals import Principal

router = APIRouter(
    prefix="/api/admin/keys",
    tags=["admin"],
    responses=api_errors(401, 404, 503),
    route_class=BoundedJsonRoute,  # a body's JSON depth is bounded before it is read
)


class KeyFields(BaseModel):
    """A key's limits; on update, only the fields sent change (null clears one)."""

    model_config = ConfigDict(extra="forbid")

    max_budget_usd: float | None = Field(default=None, ge=0, le=MAX_BUDGET_USD)
    budget_period: Literal["day", "week", "month", "none"] | None = None
    models: list[str] | None = Field(default=None, min_length=1, max_length=MAX_MODELS)
    rpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    tpm: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    max_parallel: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    expires_at: str | None = Field(
        default=None, description="an ISO 8601 time, or a duration from now: 30d, 12h, 2w"
    )
    metadata: dict[str, Any] | None = None
    admin: bool | None = None


class NewKey(KeyFields):
    name: str = Field(min_length=1, max_length=200)


async def _admin(request: Request, principal: Principal) -> Container:
    container = container_from(request)
    await require_admin(principal, container.settings, container.meter.keys)
    return container


def _view(
    key_id: str,
    name: str,
    created_at: datetime | None,
    revoked_at: datetime | None,
    limits: KeyLimits | None,
    static: bool = False,
) -> dict[str, Any]:
    now = utcnow()
    view = (limits or KeyLimits(key_id)).to_dict(now)
    view.update(
        name=name,
        static=static,
        created_at=created_at.isoformat() if created_at else None,
        revoked_at=revoked_at.isoformat() if revoked_at else None,
        active=revoked_at is None and not (limits is not None and limits.expired(now)),
    )
    return view


async def _all(container: Container) -> list[dict[str, Any]]:
    stored = await container.api_keys.list()
    static = container.auth.static_key_ids
    ids = [info.id for info in stored] + static
    limits = await container.meter.keys.many(ids)
    views = [_view(i.id, i.name, i.created_at, i.revoked_at, limits.get(i.id)) for i in stored]
    views += [_view(k, "API_KEYS entry", None, None, limits.get(k), static=True) for k in static]
    return views


async def _one(container: Container, key_id: str) -> dict[str, Any]:
    for view in await _all(container):
        if view["id"] == key_id:
            return view
    raise NotFoundError(f"no API key {key_id}")


@router.get("")
async def list_keys(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Every key (database keys and API_KEYS entries), with its limits and spend."""
    return {"items": await _all(await _admin(request, principal))}


@router.post("", status_code=201, responses=api_errors(400, 413, 422))
async def create_key(body: NewKey, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """A new key with its limits; `key` is its secret, shown only in this answer."""
    container = await _admin(request, principal)
    given = body.model_dump(exclude={"name"}, exclude_unset=True)
    changes = changes_of(given, utcnow())  # checked before the key exists
    info, secret = await container.api_keys.create(body.name)
    if changes:
        await container.meter.keys.set(info.id, changes)
    view = await _one(container, info.id)
    view["key"] = secret
    return view


@router.get("/{key_id}", responses=api_errors(422))
async def show_key(key_id: str, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    return await _one(await _admin(request, principal), key_id)


@router.patch("/{key_id}", responses=api_errors(400, 413, 422))
async def update_key(
    key_id: str, body: KeyFields, request: Request, principal: PrincipalDep
) -> dict[str, Any]:
    """Change some of a key's limits (the fields sent; null clears one)."""
    container = await _admin(request, principal)
    await _one(container, key_id)
    changes = changes_of(body.model_dump(exclude_unset=True), utcnow())
    if changes:
        await container.meter.keys.set(key_id, changes)
    return await _one(container, key_id)


@router.delete("/{key_id}", status_code=204, responses=api_errors(409, 422))
async def revoke_key(key_id: str, request: Request, principal: PrincipalDep) -> Response:
    """Revoke a key: its requests are refused (401) within seconds, on every server."""
    container = await _admin(request, principal)
    view = await _one(container, key_id)
    if view["static"]:
        raise ConflictError(f"{key_id} is an API_KEYS entry: remove it from the setting")
    if not await container.api_keys.revoke(key_id):
        raise ConflictError(f"API key {key_id} is already revoked")
    return Response(status_code=204)

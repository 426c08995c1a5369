"""Who may manage keys and read everyone's usage: the Basic user, an OIDC user listed in
ADMIN_USERS, a key created `--admin`, and anyone in DEV_MODE (authentication is off).
Everything under /api/admin answers 404 to anyone else, as if it were not there."""

from __future__ import annotations

from symposia.errors import NotFoundError
from symposia.governance.key_store import KeyLimitStore
from symposia.security.principals import Principal
from symposia.settings import Settings


async def is_admin(principal: Principal, settings: Settings, keys: KeyLimitStore) -> bool:
    if principal.kind in ("basic", "dev"):
        return True
    if principal.kind == "oidc":
        return principal.name in settings.admin_users
    if principal.kind == "api_key":
        limits = await keys.cached(principal.name)
        return limits is not None and limits.admin
    return False


async def require_admin(principal: Principal, settings: Settings, keys: KeyLimitStore) -> None:
    """NotFoundError (404) unless `principal` is an admin."""
    if not await is_admin(principal, settings, keys):
        raise NotFoundError("not found")

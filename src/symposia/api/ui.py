"""The browser page at `/` (static files under `/static/`), and service info for JSON
clients asking `/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from symposia.api.deps import ContainerDep, get_principal
from symposia.api.json_bodies import BoundedJsonRoute
from symposia.compat.openrouter_conversations import status_body
from symposia.errors import UnauthorizedError
from symposia.storage.stats import counts

WEB = Path(__file__).resolve().parent.parent / "web"
STATIC_PATH = "/static"

# The page runs only its own scripts and styles, talks only to this server, and is never
# framed (clickjacking): a script injected into it could neither run nor send data away.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
}

# A static file is taken as its declared type only (a script is never sniffed from a
# text file), and one opened on its own (an SVG, an HTML file) is held to the page's rules.
STATIC_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(route_class=BoundedJsonRoute, tags=["ui"])


class _StaticFiles(StaticFiles):
    """Starlette's static files, each answer (GET or HEAD, 200 or 304) with
    `STATIC_HEADERS`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(STATIC_HEADERS)
        return response


def static_files() -> StaticFiles:
    """The page's HTML, JavaScript modules and CSS: no build step, nothing from a CDN."""
    return _StaticFiles(directory=WEB)


def _quality(accept: str, media_type: str) -> float:
    """The q-value `accept` gives `media_type` exactly (0 when it is not named)."""
    for part in accept.split(","):
        kind, *params = (piece.strip() for piece in part.split(";"))
        if kind.lower() != media_type:
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value)
                except ValueError:
                    return 0.0
        return 1.0
    return 0.0


def wants_html(accept: str | None) -> bool:
    """A browser names text/html above JSON; curl, SDKs and `*/*` get JSON."""
    if not accept:
        return False
    return _quality(accept, "text/html") > _quality(accept, "application/json")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """The icon, for what asks the conventional path instead of reading the page's
    `<link rel="icon">` (the API docs page, bookmarks): an SVG, not a 404 per load."""
    return FileResponse(
        WEB / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/", include_in_schema=False)
async def index(request: Request, container: ContainerDep) -> Response:
    """Browsers (text/html named above JSON) get the page. JSON clients get the service's
    name, status and version, and, when the request is allowed to list (signed in, or an
    open server), the counts of the caller's own runs, conversations and messages; with
    COMPAT_OPENROUTER_ROUTES (the default), in the OpenRouter chat server's shape too
    (`status: "online"`, `service`, `conversations`, `total_messages`)."""
    if wants_html(request.headers.get("accept")):
        return FileResponse(WEB / "index.html", headers=PAGE_HEADERS)
    try:
        owner: str | None = (await get_principal(request)).id
    except UnauthorizedError:
        owner = None
    if container.settings.compat_openrouter_routes:
        return JSONResponse(await status_body(container, owner))
    body: dict[str, Any] = {
        "name": "Symposia",
        "status": "ok",
        "version": container.settings.reported_version,
    }
    if owner is not None:
        body["counts"] = await counts(container.engine, owner)
    return JSONResponse(body)

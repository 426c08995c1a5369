"""The relay's routes answered in front of FastAPI's own layers.

A request passes about a dozen ASGI layers on its way to a route: FastAPI's server-error,
exception-telemetry and body-limit layers, ours (request id, allowed hosts, CORS, body
size, sessions), FastAPI's exception and exit-stack layers, then a router that tries
route after route through included routers. For the relay that was about a tenth of its
CPU, most of it spent by layers with nothing to do. `HotPath` sends a `POST` to the exact
path of a hot route (the `LeanRoute`s) down a short stack of the layers that do have work:

- the server-error layer (the 500 and its handler) and FastAPI's exception layer (the
  app's exception handlers: every error reads as before);
- our request context, allowed hosts and body size, built from the app's own list;
- CORS and sessions are left out, so a request that needs either (an `Origin` header, a
  session cookie) takes the full stack, as does anything under a `root_path`;
- the route itself, found by its path, with the scope the router would give it.

The app is given no hot routes when FastAPI's native telemetry is on (tracing): its
spans name the route the router selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from symposia.security.sessions import Sessions, has_session_cookie

# Layers the short stack leaves out: a request that needs them takes the full one.
LEFT_OUT = (CORSMiddleware, Sessions)


class HotRoutes:
    """The bottom of the short stack: the route for the path, as the router runs it."""

    def __init__(self, router: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self._router = router
        self.by_path: dict[str, BaseRoute] = {route.path: route for route in routes}  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.by_path[scope["path"]]
        scope.setdefault("router", self._router)
        _, child = route.matches(scope)
        scope.update(child)
        await route.handle(scope, receive, send)


class HotPath:
    """In front of the app's stack: the hot routes' requests to the short stack."""

    def __init__(self, full: ASGIApp, short: ASGIApp, paths: Iterable[str]) -> None:
        self._full = full
        self._short = short
        self._paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self._paths
            and not scope.get("root_path")
            and _plain(scope["headers"])
        ):
            await self._short(scope, receive, send)
        else:
            await self._full(scope, receive, send)


def _plain(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether a request needs neither CORS (no `Origin`) nor a session (no cookie)."""
    for name, _ in headers:
        if name == b"origin":
            return False
    return not has_session_cookie(headers)  # type: ignore[arg-type]


class HotPathApp(FastAPI):
    """FastAPI, with `HotPath` in front of its middleware stack for `hot_routes`."""

    def __init__(self, *, hot_routes: Sequence[BaseRoute] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot_routes = list(hot_routes)

    def build_middleware_stack(self) -> ASGIApp:
        full = super().build_middleware_stack()
        if not self.hot_routes:
            return full
        error_handler, handlers = None, {}
        for key, value in self.exception_handlers.items():  # as FastAPI sorts them
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        routes = HotRoutes(self.router, self.hot_routes)
        short: ASGIApp = ExceptionMiddleware(routes, handlers=handlers, debug=self.debug)
        for layer in reversed(self.user_middleware):
            if layer.cls not in LEFT_OUT:  # type: ignore[comparison-overlap]
                short = _built(layer, short)
        short = ServerErrorMiddleware(short, handler=error_handler, debug=self.debug)
        return HotPath(full, short, routes.by_path)


def _built(layer: Middleware, app: ASGIApp) -> ASGIApp:
    cls, args, kwargs = layer
    built: ASGIApp = cls(app, *args, **kwargs)
    return built

"""The app factory: settings in, a wired FastAPI application out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from symposia.api import (
    admin_keys,
    approvals,
    chat,
    conversations,
    exports,
    health,
    metrics,
    models,
    openai_compat,
    openai_responses,
    policies,
    runs,
    sessions,
    signin,
    tools,
    ui,
    usage,
    ws,
)
from symposia.api.errors import install_error_handlers
from symposia.api.hot_path import HotPathApp
from symposia.api.responses import openai_without_422
from symposia.api.security_schemes import declare_security
from symposia.compat import openrouter_conversations
from symposia.container import Container, build_container
from symposia.observability import tracing
from symposia.observability.logging import quiet_third_party
from symposia.observability.requests import RequestContext
from symposia.providers.local import LocalProvider
from symposia.providers.registry import ProviderRegistry
from symposia.security.body_limit import BodySizeLimit
from symposia.security.hosts import AllowedHosts
from symposia.security.sessions import Sessions
from symposia.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None, providers: ProviderRegistry | None = None
) -> FastAPI:
    settings = settings or load_settings()
    quiet_third_party()
    tracer_provider = tracing.configure()  # None unless an OTLP endpoint is set
    container = build_container(settings, providers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        if settings.local_preload:
            for provider in container.providers:
                if isinstance(provider, LocalProvider) and provider.configured:
                    await provider.load()
        yield
        await container.shutdown()
        tracing.flush()

    app = HotPathApp(
        # The relay's routes, served ahead of FastAPI's layers (api/hot_path), unless
        # tracing is on: FastAPI's spans name the route its router selects.
        hot_routes=openai_compat.hot_routes() if tracer_provider is None else (),
        title="Symposia",
        version=settings.reported_version,
        summary="Streams LLM conversations and multi-agent runs over Server-Sent Events.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry makes the HTTP request spans when tracing is on
        # (on our provider); off, it is off: asking on every request whether it is
        # configured cost more than a request's own logging. Metrics and logs are ours.
        telemetry=tracing.fastapi_telemetry(tracer_provider),
    )
    app.state.container = container
    app.state.oidc = None
    if settings.oidc_configured:  # authlib and its HTTP client loaded only when it is
        from symposia.security.oidc import OidcSignIn

        app.state.oidc = OidcSignIn(settings)
    # Added innermost first: RequestContext ends up outermost, so every response (a 413
    # or a CORS preflight included) carries a request id and is logged and counted.
    app.add_middleware(Sessions, settings=settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            # The session cookie crosses origins only to listed ones (never with `*`), so
            # a page served elsewhere can follow a run with EventSource(withCredentials).
            allow_credentials=settings.cors_credentials,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Request-Id",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                # Every X-Symposia-* header a response carries: a page reads it too.
                openai_compat.CONVERSATION_HEADER,
            ],
        )
    # Outside everything but RequestContext: a request for another host name (a DNS
    # rebinding page) is refused before sessions, CORS or a route see it.
    app.add_middleware(AllowedHosts, policy=container.hosts)
    app.add_middleware(RequestContext, metrics=container.metrics)
    install_error_handlers(app)
    # The OpenAI-compatible routes first: they are the hot path, and routes are matched
    # in order (their paths, under /v1 and /api/v1, overlap no other route).
    for router in [*openai_compat.routers, *openai_responses.routers]:
        app.include_router(router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(runs.router)
    app.include_router(exports.router)
    app.include_router(policies.router)
    app.include_router(tools.router)
    app.include_router(approvals.router)
    app.include_router(models.router)
    app.include_router(conversations.router)
    app.include_router(chat.router)
    app.include_router(ws.router)
    app.include_router(ui.router)
    app.mount(ui.STATIC_PATH, ui.static_files(), name="static")
    app.include_router(signin.router)
    app.include_router(sessions.router)
    app.include_router(admin_keys.router)
    app.include_router(usage.router)
    if settings.compat_openrouter_routes:  # after ours: its paths are the root's
        app.include_router(openrouter_conversations.router)
    openai_without_422(app)
    declare_security(app)
    return app


def container_of(app: FastAPI) -> Container:
    container: Container = app.state.container
    return container

"""uvicorn, taught to end runs before it drains connections.

uvicorn runs the lifespan shutdown only after every connection has closed, and an SSE
connection closes only when its run ends. So on SIGTERM we stop accepting, cancel the
runs (each records `cancelled` and sends its stream a final `run_status` and `done`),
and only then let uvicorn wait for the connections, which are closing by then.

`server_config` is the one uvicorn configuration of `symposia serve`, and `build_server` the
server of its single process or of each of its workers (`symposia.workers`).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import socket

import uvicorn
from starlette.types import ASGIApp

from symposia.app import container_of, create_app
from symposia.container import Container
from symposia.descriptors import default_max_connections, raise_descriptor_limit
from symposia.observability.logging import configure_serve_logging
from symposia.settings import Settings

EXTRA_DRAIN_SECONDS = 5.0


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn as `serve` runs it: httptools (h11 when it is not installed), with the
    request head bounded by MAX_HEADER_BYTES and MAX_HEADER_COUNT either way, and with
    httptools read deadlines and a cap on connections (`connection_limits`); the file
    descriptor limit is raised to the hard limit first."""
    max_connections = settings.max_connections or default_max_connections(raise_descriptor_limit())
    if importlib.util.find_spec("httptools") is not None:
        from symposia.connection_limits import guarded_httptools

        http: type[asyncio.Protocol] | str = guarded_httptools(
            settings.max_header_bytes,
            settings.max_header_count,
            settings.header_read_timeout_seconds,
            settings.body_read_timeout_seconds,
            max_connections,
        )
    else:  # h11 bounds the head's bytes (it answers 400); its size bounds the count too
        http = "h11"
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=http,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # A WebSocket message over it closes the socket with 1009 before it is read whole.
        ws_max_size=settings.max_body_bytes,
        log_level=settings.log_level.lower(),
        log_config=None,  # `serve` configures logging itself
        access_log=False,  # RequestContext logs each request once, with its id
        # X-Forwarded-For counts only from TRUSTED_PROXIES (security.client_address);
        # uvicorn's own handling would take it from any loopback peer first.
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds + EXTRA_DRAIN_SECONDS),
        # h11 has no read deadlines or early cap here: at least a 503 past the cap.
        limit_concurrency=None if http != "h11" else max_connections,
    )


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, container: Container) -> None:
        super().__init__(config)
        self._container = container

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        tune_garbage_collector()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting before anything else
        await self._container.shutdown()
        await super().shutdown(sockets)


# Allocations between two young-generation collections (Python's default: 700). At 700 a
# request's objects, alive for the whole stream, were walked in every collection of the
# first two generations, then promoted and walked again: a tenth of the relay's CPU. The
# price is a rarer, longer pause (a few ms at 50 streams in flight).
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Move what start-up made (modules, the app, the container: most of the heap) out of
    the garbage collector's sight, and collect the young generation less often.

    The startup objects live as long as the process, and each full collection under load
    walked them all again (a fifth of the server's CPU in the relay benchmark, every full
    collection a pause of about 90 ms). `symposia serve` imports with the collector off
    (see `symposia.__main__`): this one collection is start-up's only one, and turns it on."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.enable()


def build_server(settings: Settings) -> GracefulServer:
    """The app built from the settings, under its `GracefulServer`, with logging set up."""
    configure_serve_logging(settings)
    app = create_app(settings)
    return GracefulServer(server_config(app, settings), container_of(app))

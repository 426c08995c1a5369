"""`symposia serve --workers N`: uvicorn's own supervisor, with our server in each worker.

uvicorn's `Multiprocess` binds the socket once, spawns N workers on it, pings each every
half second, replaces one that dies or hangs, passes SIGTERM/SIGINT on as SIGTERM and
waits for the workers (SIGHUP replaces them one by one). Its workers run a plain
`uvicorn.Server` on an app imported by name; ours run `GracefulServer` (runs end before
connections drain) on an app built from the settings the supervisor pickles to them.
uvicorn has no hook for the worker class, so `Supervisor` swaps `Worker` in while it runs.

Each worker imports this module first, before it can answer a health check: its imports
stay light, and the app is built once the health-check thread is up.
"""

from __future__ import annotations

import socket
import threading
from unittest import mock

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from symposia.settings import Settings


class SupervisorConfig(uvicorn.Config):
    """Where to listen and how many workers; pickled to each worker with the settings."""

    def __init__(self, settings: Settings, workers: int) -> None:
        super().__init__(
            "symposia.app:create_app",  # never loaded: each worker builds its own app
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=settings.log_level.lower(),
            log_config=None,  # `serve` configures logging, in the supervisor and each worker
        )
        self.settings = settings


class Worker(multiprocess.Process):
    """A worker process running Symposia's `GracefulServer`."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        # Health checks are answered while the app is built: that takes a few seconds.
        threading.Thread(target=self.always_pong, daemon=True).start()
        from symposia.server import build_server

        assert isinstance(self.config, SupervisorConfig)
        self._server = build_server(self.config.settings)
        self._server.run(sockets)

    def pong(self) -> None:
        """Answer one health check: alive, and whether the server has started."""
        self.child_conn.recv()
        self.child_conn.send(self._server is not None and self._server.started)


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, starting `Worker`s instead of its own processes."""

    def __init__(self, config: SupervisorConfig) -> None:
        super().__init__(config, sockets=[config.bind_socket()])

    def run(self) -> None:
        # uvicorn names its worker class at every place it starts one (at start, on a
        # death, on SIGHUP and SIGTTIN), all inside `run`.
        with mock.patch.object(multiprocess, "Process", Worker):
            super().run()

    @property
    def exit_status(self) -> int:
        """uvicorn's start-up failure status when a worker could not start (the database is
        down, say: uvicorn stops then, as a restart would fail the same way), else 0."""
        failed = any(process.exitcode == STARTUP_FAILURE for process in self.processes)
        return STARTUP_FAILURE if failed else 0

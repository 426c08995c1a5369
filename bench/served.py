"""`symposia serve` as a separate process for the benchmark scripts, configured as a
deployment is: an API key made with `symposia keys create`, checked on every request."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tests.fakes.live import free_port


@dataclass(frozen=True, slots=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    key: str
    pid: int


@asynccontextmanager
async def served(
    settings: dict[str, str], key_name: str, key_options: tuple[str, ...] = ()
) -> AsyncIterator[Served]:
    """The server on a free port with a fresh SQLite file, `settings` as its environment
    on top of this one's; stopped with SIGTERM at the end. `key_options` go to `symposia
    keys create` (a budget, limits)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        creating = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "symposia", "keys", "create", "--name", key_name),
            *key_options,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        created, _ = await creating.communicate()
        key = created.decode().strip().splitlines()[-1]
        server = subprocess.Popen(  # its output unread: a pipe could fill and block it
            [sys.executable, "-m", "symposia", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield Served(f"http://127.0.0.1:{port}", key, server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

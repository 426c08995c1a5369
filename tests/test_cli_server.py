"""The terminal client finds its server, or says how to start one: run against a real
`symposia serve` process that wants an API key, with the scripted models (deterministic:
`scripted/count` counts "1 2 … 8", `scripted/echo` quotes what it was told).

The fixtures here serve the other `test_cli_*` modules too: the server, and the client run
as a person runs it, in a pseudo-terminal (pexpect) or with its output piped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from tests.fakes.live import free_port, serve_process

MAX_TOKENS = 8  # each turn of scripted/count is "1 2 3 4 5 6 7 8"
COUNTED = " ".join(str(n) for n in range(1, MAX_TOKENS + 1))
ESCAPE = "\x1b["
RUN_ID = re.compile(r"run ([0-9a-f]{32})")


@dataclass
class Server:
    url: str
    key: str
    directory: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.key}, timeout=10)

    def get(self, path: str) -> Any:
        with self.api() as client:
            response = client.get(path)
            assert response.status_code == 200, response.text
            return response.json()

    def wait_finished(self, run_id: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.get(f"/api/run/{run_id}")
            if run["status"] not in ("pending", "running"):
                return run
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not finish")


def _server_env(directory: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYMPOSIA_", "BASIC_AUTH", "REDIS_URL", "EVENT_LOG"))
    }
    return {
        **env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory}/symposia.db",
        "DEFAULT_MODEL": "scripted/count",
        "DEFAULT_MAX_TOKENS": str(MAX_TOKENS),
        "SCRIPTED_TOKEN_DELAY": "0.01",
        "SSE_HEARTBEAT_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`symposia serve` with an API key (no DEV_MODE: the key is required)."""
    directory = tmp_path_factory.mktemp("cli-server")
    port = free_port()
    env = _server_env(directory, port)
    created = subprocess.run(
        [sys.executable, "-m", "symposia", "keys", "create", "--name", "cli tests"],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    process = serve_process(env, directory)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield Server(url, key, directory)
    finally:
        process.terminate()
        process.wait(timeout=20)


def client_env(key: str | None = None) -> dict[str, str]:
    """The client's environment: a colour terminal, no CPR queries, the key if given."""
    drop = ("NO_COLOR", "FORCE_COLOR", "SYMPOSIA_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "200"})
    if key is not None:
        env["SYMPOSIA_API_KEY"] = key
    return env


def spawn(server: Server, *args: str, cwd: Path | None = None) -> pexpect.spawn:
    """`symposia ARGS --server URL` in a pseudo-terminal, 200 columns wide."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "symposia", *args, "--server", server.url],
        env=client_env(server.key),
        cwd=str(cwd or server.directory),
        dimensions=(50, 200),
        encoding="utf-8",
        timeout=20,
    )


def piped(
    *args: str, key: str | None = None, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`symposia ARGS` with its output piped (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "symposia", *args],
        env=client_env(key),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_server_says_how_to_start_one(tmp_path: Path) -> None:
    result = piped("runs", "list", "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert result.returncode != 0
    assert "no Symposia server answers at http://127.0.0.1:" in result.stderr
    assert "symposia serve" in result.stderr
    assert "make run" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_default_server_comes_from_the_settings(tmp_path: Path) -> None:
    port = free_port()
    env = {**client_env(), "HOST": "0.0.0.0", "PORT": str(port)}
    result = subprocess.run(
        [sys.executable, "-m", "symposia", "runs", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"no Symposia server answers at http://127.0.0.1:{port} " in result.stderr


def test_api_key_from_option_or_environment_and_401_explained(server: Server) -> None:
    refused = piped("runs", "list", "--server", server.url)
    assert refused.returncode == 1
    assert "the server wants credentials" in refused.stderr
    assert "--api-key" in refused.stderr
    assert "SYMPOSIA_API_KEY" in refused.stderr
    assert "Traceback" not in refused.stderr

    by_option = piped("runs", "list", "--server", server.url, "--api-key", server.key)
    assert by_option.returncode == 0, by_option.stderr
    by_env = piped("runs", "list", "--server", server.url, key=server.key)
    assert by_env.returncode == 0, by_env.stderr


def test_404_and_422_are_one_line_messages(server: Server) -> None:
    missing = piped("runs", "show", "nope", "--server", server.url, key=server.key)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "symposia: not found: run 'nope' not found"

    refused = piped("debate", "x", "--turns", "0", "--server", server.url, key=server.key)
    assert refused.returncode == 1
    assert refused.stderr.startswith("symposia: the server refused the request: max_turns")
    assert len(refused.stderr.strip().splitlines()) == 1

    preset = piped("debate", "x", "--preset", "nope", "--server", server.url, key=server.key)
    assert "unknown preset 'nope'" in preset.stderr

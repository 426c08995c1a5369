"""`symposia serve` loads only what it serves with (issue 23: idle RSS and start-up time).

The client commands' libraries (prompt_toolkit, httpx), Redis's client without REDIS_URL,
authlib without OIDC, PostgreSQL's driver on SQLite, structlog and rich (the console's)
without LOG_FORMAT=console, and alembic when the database is already at its head are
loaded on first use, never at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from symposia.storage.migrate import alembic_config, head_revision

# The OpenTelemetry SDK too: tracing is off without an OTLP endpoint (the API, which
# FastAPI imports itself, is all that is loaded then).
NOT_AT_START = (
    "prompt_toolkit",
    "httpx",
    "redis",
    "authlib",
    "alembic",
    "asyncpg",
    "structlog",
    "rich",
    "opentelemetry.sdk",
    "mcp",
)


def _loaded_by(code: str, database: Path, **more: str) -> list[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "OIDC_ISSUER": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "PYTHONPATH": os.pathsep.join(sys.path),
        **more,
    }
    script = f"{code}\nimport sys\nprint(' '.join(m for m in {NOT_AT_START!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_head_is_read_as_alembic_reads_it() -> None:
    from alembic.script import ScriptDirectory

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_serve_starts_without_the_libraries_it_does_not_serve_with(tmp_path: Path) -> None:
    database = tmp_path / "start.db"
    migrate = (
        "import asyncio\nfrom symposia.settings import load_settings\n"
        "from symposia.storage.migrate import migrate\n"
        "asyncio.run(migrate(load_settings()))"
    )
    assert "alembic" in _loaded_by(migrate, database)  # a new database: alembic creates it
    serve = (
        f"{migrate}\nfrom symposia.cli import build_parser\nbuild_parser()\n"
        "from symposia.server import build_server\nbuild_server(load_settings())"
    )
    assert _loaded_by(serve, database) == []  # at its head: nothing to migrate


def test_the_tracing_sdk_is_loaded_only_when_an_otlp_endpoint_is_named(tmp_path: Path) -> None:
    serve = (
        "from symposia.settings import load_settings\n"
        "from symposia.server import build_server\nbuild_server(load_settings())"
    )
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    assert "opentelemetry.sdk" in _loaded_by(serve, tmp_path / "on.db", **endpoint)
    disabled = {**endpoint, "OTEL_SDK_DISABLED": "true"}
    assert "opentelemetry.sdk" not in _loaded_by(serve, tmp_path / "off.db", **disabled)


def test_on_postgresql_the_drivers_connect_failures_have_their_handler() -> None:
    """asyncpg, loaded by the engine on PostgreSQL, has its connection failures answered
    as the database outage they are (`api.errors`), though `storage.failures` no longer
    imports it."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    script = (
        "from symposia.app import create_app\napp = create_app()\n"
        "print(' '.join(sorted(k.__name__ for k in app.exception_handlers "
        "if k.__module__.startswith('asyncpg'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == sorted(
        [
            "CannotConnectNowError",
            "InterfaceError",
            "InvalidAuthorizationSpecificationError",
            "InvalidCatalogNameError",
            "InvalidPasswordError",
            "PostgresConnectionError",
            "TooManyConnectionsError",
        ]
    )

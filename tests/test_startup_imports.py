"""`symposia serve` loads only what it serves with (issue 23: idle RSS and start-up time).

The client commands' libraries (prompt_toolkit, httpx), Redis's client without REDIS_URL,
authlib without OIDC, and alembic when the database is already at its head are loaded on
first use, never at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from symposia.storage.migrate import alembic_config, head_revision

NOT_AT_START = ("prompt_toolkit", "httpx", "redis", "authlib", "alembic", "mcp")


def _loaded_by(code: str, database: Path) -> list[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "OIDC_ISSUER": "",
        "PYTHONPATH": os.pathsep.join(sys.path),
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

"""`symposia keys create|list|show|update|revoke` with limits (issue 25), as a person
types them, on the database the server uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from symposia.security.api_keys import parse_key


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    return subprocess.run(
        [sys.executable, "-m", "symposia", "keys", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_carry_their_limits_from_the_command_line(tmp_path: Path) -> None:
    created = _cli(
        tmp_path,
        *("create", "--name", "team", "--budget", "5", "--period", "month"),
        *("--models", "openai/*", "--models", "local/*", "--rpm", "10", "--expires", "30d"),
        "--admin",
    )
    assert created.returncode == 0, created.stderr
    parsed = parse_key(created.stdout.strip().splitlines()[-1])
    assert parsed is not None
    key_id, secret = parsed
    listed = _cli(tmp_path, "list").stdout
    assert key_id in listed
    assert "$0.0000/$5.00 month" in listed
    assert "admin" in listed
    assert secret not in listed
    shown = _cli(tmp_path, "show", key_id).stdout
    assert 'models: ["openai/*", "local/*"]' in shown
    assert "rpm: 10" in shown
    assert "max_budget_usd: 5.0" in shown
    updated = _cli(tmp_path, "update", key_id, "--clear", "rpm", "--tpm", "1000", "--no-admin")
    assert updated.returncode == 0, updated.stderr
    assert "rpm: null" in updated.stdout
    assert "tpm: 1000" in updated.stdout
    assert "admin: false" in updated.stdout
    bad = _cli(tmp_path, "update", key_id, "--expires", "soon")
    assert bad.returncode == 2
    assert "expires 'soon'" in bad.stderr
    assert _cli(tmp_path, "update", "nosuchkey00", "--rpm", "1").returncode == 1
    assert _cli(tmp_path, "revoke", key_id).returncode == 0
    assert "revoked" in _cli(tmp_path, "list").stdout

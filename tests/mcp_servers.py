"""The MCP servers the tool tests run: PyPI's mcp-server-time and our fault server in
the venv, the npm filesystem and everything servers from tests/mcp/node_modules
(`scripts/test-mcp-servers` installs them; a test that needs them skips without)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent / "mcp"
NODE_BIN = HERE / "node_modules" / ".bin"


def node_server(name: str) -> Path:
    path = NODE_BIN / name
    if not path.exists():
        missing = f"{name} is not installed: run scripts/test-mcp-servers"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return path


def servers_file(tmp_path: Path, folder: Path, **extra: dict[str, Any]) -> Path:
    """A servers file with `time`, `fs` (on `folder`), `faults`, `guarded` (the time
    server, whose `convert_time` needs approval) and `secret` (granted to a principal no
    test is)."""
    servers: dict[str, Any] = {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]},
        "fs": {"command": str(node_server("mcp-server-filesystem")), "args": [str(folder)]},
        "faults": {"command": sys.executable, "args": [str(HERE / "fault_server.py")]},
        "guarded": {
            "command": sys.executable,
            "args": ["-m", "mcp_server_time"],
            "require_approval": {"convert_time": "always"},
        },
        "secret": {
            "command": sys.executable,
            "args": ["-m", "mcp_server_time"],
            "principals": ["someone-else"],
        },
        **extra,
    }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(servers))
    return path

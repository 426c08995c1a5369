"""Exports saved to files: the server names them (`Content-Disposition`), `-o` overrides,
`-o -` writes to standard output."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from symposia.cli.client import Api, CliError

FORMATS = ("md", "pdf", "json")
_FILENAME = re.compile(r'filename="?([^";]+)"?')


def run_export_path(run_id: str, fmt: str) -> str:
    return f"/api/export/{run_id}.{fmt}"


def conversation_export_path(conversation_id: str, fmt: str) -> str:
    return f"/api/conversations/{conversation_id}/export.{fmt}"


def _server_filename(header: str | None, fallback: str) -> str:
    """The name the server suggests, reduced to a bare file name (never a path)."""
    match = _FILENAME.search(header or "")
    name = Path(match.group(1)).name if match else ""
    return name if name not in ("", ".", "..") else fallback


def download(api: Api, path: str, output: str | None, fallback: str) -> str | None:
    """Save the export at `path` to `output` (or the server's file name, in the current
    folder); its path, or None when it went to standard output."""
    response = api.request("GET", path)
    if output == "-":
        if sys.stdout.isatty() and path.endswith(".pdf"):
            raise CliError("a PDF is not for a terminal: give -o FILE, or pipe it")
        sys.stdout.buffer.write(response.content)
        sys.stdout.flush()
        return None
    target = Path(output or _server_filename(response.headers.get("content-disposition"), fallback))
    try:
        target.write_bytes(response.content)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror}") from exc
    return str(target)

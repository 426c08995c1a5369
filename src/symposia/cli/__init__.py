"""The `symposia` command.

The server's side: `serve`, `db upgrade`, `hash-password`, `keys create|list|revoke` (settings
from the environment and `.env`). The client's side, over HTTP to a running server:
`debate`, `chat`, `runs list|show|export`.
"""

from __future__ import annotations

import argparse

from symposia.cli import db, keys, passwords, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symposia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (serve, db, passwords, keys):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


__all__ = ["main"]

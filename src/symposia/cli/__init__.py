"""The `symposia` command.

The server's side: `serve`, `db upgrade`, `hash-password`, `keys create|list|revoke`,
`sessions end` (settings from the environment and `.env`). The client's side, over HTTP
to a running server: `debate`, `chat`, `runs list|show|export` (docs/cli.md).
"""

from __future__ import annotations

import argparse
import gc
import sys

from symposia.cli import chat, db, debate, keys, passwords, runs, serve, sessions
from symposia.cli.client import CliError, add_server_options
from symposia.cli.exit_codes import INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symposia", description=__doc__)
    add_server_options(parser, before_command=True)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (serve, db, passwords, keys, sessions, debate, chat, runs):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "enables_gc_itself", False):
        gc.enable()  # off while `python -m symposia` imported (see `__main__`)
    given = [name for name in ("server", "api_key") if getattr(args, name, None) is not None]
    if given and not getattr(args, "talks_to_server", False):
        option = "--" + given[0].replace("_", "-")
        parser.error(f"{option} is for the commands that talk to a server, not `{args.command}`")
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"symposia: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return INTERRUPTED


__all__ = ["main"]

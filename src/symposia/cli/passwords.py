"""`symposia hash-password`: a bcrypt hash for BASIC_AUTH_PW_HASH."""

from __future__ import annotations

import argparse
import getpass
import sys

from symposia.cli.parsing import Commands


def hash_password_command(args: argparse.Namespace) -> int:
    """Print a bcrypt hash for BASIC_AUTH_PW_HASH (password from a prompt, or stdin)."""
    from symposia.security.passwords import hash_password  # bcrypt: for this command only

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("symposia: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("symposia: empty password", file=sys.stderr)
        return 1
    try:
        print(hash_password(password))
    except ValueError as exc:
        print(f"symposia: {exc}", file=sys.stderr)
        return 1
    return 0


def register(commands: Commands) -> None:
    hash_parser = commands.add_parser("hash-password", help="print a bcrypt hash")
    hash_parser.set_defaults(handler=hash_password_command)

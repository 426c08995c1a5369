"""`symposia db upgrade`: database migrations."""

from __future__ import annotations

import argparse
import asyncio

from symposia.cli.config import settings_or_exit
from symposia.cli.parsing import Commands


def db_upgrade(args: argparse.Namespace) -> int:
    """Apply the migrations to DATABASE_URL (the server also does this at start-up)."""
    from symposia.storage.db import DatabaseTimeouts, create_engine  # loaded by this command only
    from symposia.storage.migrate import current_revision, upgrade

    settings = settings_or_exit()

    async def go() -> str | None:
        engine = create_engine(
            settings.database_url, DatabaseTimeouts.of(settings, statement=False)
        )
        try:
            await upgrade(engine, args.revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    print(f"database at revision {asyncio.run(go())}")
    return 0


def register(commands: Commands) -> None:
    db_parser = commands.add_parser("db", help="database maintenance")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    upgrade_parser = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade_parser.add_argument("revision", nargs="?", default="head")
    upgrade_parser.set_defaults(handler=db_upgrade)

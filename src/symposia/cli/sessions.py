"""`symposia sessions end PRINCIPAL`: end every browser session of a principal, straight in
the database (a person removed at the OpenID provider, a leaked cookie)."""

from __future__ import annotations

import argparse
import asyncio

from symposia.cli.config import settings_or_exit
from symposia.cli.parsing import Commands


async def _end(principal: str) -> int:
    from symposia.security.session_store import SessionStore
    from symposia.storage.db import create_engine, session_factory
    from symposia.storage.migrate import upgrade

    settings = settings_or_exit()
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        store = SessionStore(
            session_factory(engine),
            settings.session_max_age_seconds,
            settings.session_absolute_max_age_seconds,
        )
        return await store.end_all(principal)
    finally:
        await engine.dispose()


def sessions_command(args: argparse.Namespace) -> int:
    ended = asyncio.run(_end(args.principal))
    print(f"ended {ended} session(s) of {args.principal}")
    return 0


def register(commands: Commands) -> None:
    parser = commands.add_parser("sessions", help="end browser sessions")
    actions = parser.add_subparsers(dest="sessions_command", required=True)
    end = actions.add_parser("end", help="end every session of a principal")
    end.add_argument("principal", help="its id, as GET /api/sessions' caller: user:NAME, oidc:…")
    parser.set_defaults(handler=sessions_command)

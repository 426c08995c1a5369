"""`symposia keys create|list|revoke`: API keys, straight in the database."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from symposia.cli.config import settings_or_exit
from symposia.cli.parsing import Commands
from symposia.security.principals import LOCAL

if TYPE_CHECKING:  # the database's modules load when a key command runs, not before
    from symposia.security.api_keys import ApiKeyStore
    from symposia.settings import Settings


async def _with_keys(action: Callable[[ApiKeyStore, Settings], Awaitable[int]]) -> int:
    from symposia.security.api_keys import ApiKeyStore
    from symposia.storage.db import DatabaseTimeouts, create_engine, session_factory
    from symposia.storage.migrate import upgrade

    settings = settings_or_exit()
    engine = create_engine(settings.database_url, DatabaseTimeouts.of(settings, statement=False))
    try:
        await upgrade(engine)
        return await action(ApiKeyStore(session_factory(engine)), settings)
    finally:
        await engine.dispose()


def _first_key_notice(adopted: dict[str, int] | None) -> str:
    """What the first key changes (on stderr, so stdout's last line stays the key)."""
    if adopted is not None:
        counts = ", ".join(f"{count} {name}" for name, count in adopted.items())
        return (
            "authentication is now on; what was made without a key now belongs to this "
            f"key: {counts}"
        )
    return (
        "authentication is now on: the server no longer answers requests without a key, "
        "and the runs, conversations and responses made before (owned by the anonymous "
        f"principal `{LOCAL.id}`) are hidden from every key. To give them to a new key, "
        "create it with `symposia keys create --name NAME --adopt-anonymous`."
    )


def keys_command(args: argparse.Namespace) -> int:
    async def create(store: ApiKeyStore, settings: Settings) -> int:
        from symposia.storage.adopt import adopt

        was_open = not (
            settings.basic_auth_configured or settings.oidc_configured or await store.any_active()
        )
        info, key = await store.create(args.name)
        adopted = None
        if args.adopt_anonymous:
            adopted = await adopt(store.sessions, LOCAL.id, f"key:{info.id}")
        if was_open or adopted is not None:
            print(f"symposia: {_first_key_notice(adopted)}", file=sys.stderr)
        print(f"created API key {info.id} ({info.name}); it is shown only this once:")
        print(key)
        return 0

    async def listing(store: ApiKeyStore, settings: Settings) -> int:
        for info in await store.list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            print(f"{info.id}  {info.created_at:%Y-%m-%d %H:%M}  {state:<18}  {info.name}")
        return 0

    async def revoke(store: ApiKeyStore, settings: Settings) -> int:
        if await store.revoke(args.id):
            print(f"revoked {args.id}")
            return 0
        print(f"symposia: no active key {args.id}", file=sys.stderr)
        return 1

    actions = {"create": create, "list": listing, "revoke": revoke}
    return asyncio.run(_with_keys(actions[args.keys_command]))


def register(commands: Commands) -> None:
    keys_parser = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    create_parser = keys_commands.add_parser("create", help="create a key (shown once)")
    create_parser.add_argument("--name", required=True)
    create_parser.add_argument(
        "--adopt-anonymous",
        action="store_true",
        help="give the runs, conversations and responses made without a key (the "
        "anonymous principal's) to the new key",
    )
    keys_commands.add_parser("list", help="list keys (never their secrets)")
    revoke_parser = keys_commands.add_parser("revoke", help="revoke a key")
    revoke_parser.add_argument("id")
    keys_parser.set_defaults(handler=keys_command)

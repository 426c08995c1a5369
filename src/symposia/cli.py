"""The `symposia` command: `serve`, `db upgrade`, `hash-password`, `keys create|list|revoke`.

Settings come from the environment and `.env`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from symposia.events.redis import EventLogUnreachableError
from symposia.observability.logging import configure_serve_logging
from symposia.security.api_keys import ApiKeyStore
from symposia.security.auth import StartupRefusedError, check_exposure
from symposia.security.passwords import hash_password
from symposia.settings import Settings, SettingsError, load_settings
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import current_revision, upgrade


def serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = load_settings(**overrides)
        if args.workers > 1:
            _check_shared(settings, args.workers)
            from symposia.security.sessions import shared_secret

            settings = shared_secret(settings)  # one session secret for all the workers
        asyncio.run(_check_exposure(settings))
        asyncio.run(_check_event_log(settings))
    except (SettingsError, StartupRefusedError, EventLogUnreachableError) as exc:
        print(f"symposia: {exc}", file=sys.stderr)
        return 2
    # The server's imports are for `serve` only: other commands start fast.
    if args.workers > 1:
        from uvicorn.config import STARTUP_FAILURE

        from symposia.workers import Supervisor, SupervisorConfig

        configure_serve_logging(settings)
        try:
            asyncio.run(_migrate(settings))  # once: workers starting together would race
        except (OSError, SQLAlchemyError) as exc:
            print(f"symposia: the database could not be migrated: {exc}", file=sys.stderr)
            return STARTUP_FAILURE  # what a single process exits with when it cannot start
        supervisor = Supervisor(SupervisorConfig(settings, args.workers))
        supervisor.run()
        return supervisor.exit_status
    from symposia.server import build_server

    build_server(settings).run()
    return 0


def _check_shared(settings: Settings, workers: int) -> None:
    """Several workers serve each other's runs: their event log must be shared too."""
    if not settings.event_log_on_redis:
        raise SettingsError(
            f"--workers {workers} needs an event log the workers share: set REDIS_URL (with "
            "EVENT_LOG auto or redis, not memory), and a DATABASE_URL they all reach "
            "(PostgreSQL; the SQLite file serves only workers on one machine)"
        )


def _worker_count(value: str) -> int:
    count = int(value) if value.isdigit() else 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return count


async def _migrate(settings: Settings) -> None:
    """Apply the migrations to DATABASE_URL."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _check_exposure(settings: Settings) -> None:
    """Refuse before binding a socket; the app checks again at start-up."""
    if settings.dev_mode or settings.basic_auth_configured or settings.host_is_loopback:
        return
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        has_keys = await ApiKeyStore(session_factory(engine)).any_active()
    finally:
        await engine.dispose()
    check_exposure(settings, has_keys)


async def _check_event_log(settings: Settings) -> None:
    """A Redis event log that cannot be reached stops start-up (the app checks again)."""
    from symposia.events.select import build_event_log

    log = build_event_log(settings)
    try:
        await log.start()
    finally:
        await log.aclose()


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"symposia: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def hash_password_command(args: argparse.Namespace) -> int:
    """Print a bcrypt hash for BASIC_AUTH_PW_HASH (password from a prompt, or stdin)."""
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


async def _with_keys(action: Callable[[ApiKeyStore], Awaitable[int]]) -> int:
    settings = _settings_or_exit()
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await action(ApiKeyStore(session_factory(engine)))
    finally:
        await engine.dispose()


def keys_command(args: argparse.Namespace) -> int:
    async def create(store: ApiKeyStore) -> int:
        info, key = await store.create(args.name)
        print(f"created API key {info.id} ({info.name}); it is shown only this once:")
        print(key)
        return 0

    async def listing(store: ApiKeyStore) -> int:
        for info in await store.list():
            state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
            print(f"{info.id}  {info.created_at:%Y-%m-%d %H:%M}  {state:<18}  {info.name}")
        return 0

    async def revoke(store: ApiKeyStore) -> int:
        if await store.revoke(args.id):
            print(f"revoked {args.id}")
            return 0
        print(f"symposia: no active key {args.id}", file=sys.stderr)
        return 1

    actions = {"create": create, "list": listing, "revoke": revoke}
    return asyncio.run(_with_keys(actions[args.keys_command]))


def db_upgrade(args: argparse.Namespace) -> int:
    """Apply the migrations to DATABASE_URL (the server also does this at start-up)."""
    settings = _settings_or_exit()

    async def go() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine, args.revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    print(f"database at revision {asyncio.run(go())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="symposia", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the HTTP server")
    serve_parser.add_argument("--host", help="overrides HOST")
    serve_parser.add_argument("--port", type=int, help="overrides PORT")
    serve_parser.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help="N processes serving one socket, each restarted if it dies (default 1). Above 1 "
        "needs REDIS_URL (the shared event log) and a DATABASE_URL they share: PostgreSQL, "
        "or the SQLite file for workers on one machine.",
    )
    serve_parser.set_defaults(handler=serve)
    db_parser = commands.add_parser("db", help="database maintenance")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    upgrade_parser = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade_parser.add_argument("revision", nargs="?", default="head")
    upgrade_parser.set_defaults(handler=db_upgrade)
    hash_parser = commands.add_parser("hash-password", help="print a bcrypt hash")
    hash_parser.set_defaults(handler=hash_password_command)
    keys_parser = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    create_parser = keys_commands.add_parser("create", help="create a key (shown once)")
    create_parser.add_argument("--name", required=True)
    keys_commands.add_parser("list", help="list keys (never their secrets)")
    revoke_parser = keys_commands.add_parser("revoke", help="revoke a key")
    revoke_parser.add_argument("id")
    keys_parser.set_defaults(handler=keys_command)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())

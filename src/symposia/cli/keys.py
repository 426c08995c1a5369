"""`symposia keys create|list|show|update|revoke`: API keys and their limits (budget,
models, rate limits, expiry, admin), straight in the database."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from symposia.cli.config import settings_or_exit
from symposia.cli.parsing import Commands
from symposia.security.principals import LOCAL

if TYPE_CHECKING:  # the database's modules load when a key command runs, not before
    from symposia.governance.key_store import KeyLimitStore
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


def _limits_of(store: ApiKeyStore) -> KeyLimitStore:
    from symposia.governance.key_store import KeyLimitStore

    return KeyLimitStore(store.sessions)


def _given(args: argparse.Namespace) -> dict[str, object]:
    """The limits named on the command line (`--no-budget` and the like clear one)."""
    given: dict[str, object] = {}
    pairs = (
        ("budget", "max_budget_usd"),
        ("period", "budget_period"),
        ("models", "models"),
        ("rpm", "rpm"),
        ("tpm", "tpm"),
        ("max_parallel", "max_parallel"),
        ("expires", "expires_at"),
    )
    for option, name in pairs:
        value = getattr(args, option, None)
        if value is not None:
            given[name] = value
    if getattr(args, "metadata", None) is not None:
        try:
            given["metadata"] = json.loads(args.metadata)
        except ValueError:
            given["metadata"] = args.metadata  # refused, with its field, by changes_of
    for name in getattr(args, "clear", None) or []:
        given[name] = None
    if getattr(args, "admin", None) is not None:
        given["admin"] = args.admin
    return given


def _changes(args: argparse.Namespace) -> dict[str, object] | None:
    """The changes to store, or None after saying on stderr what is wrong."""
    from symposia.domain.models import utcnow
    from symposia.errors import InvalidInputError
    from symposia.governance.key_changes import changes_of

    try:
        return changes_of(_given(args), utcnow())
    except InvalidInputError as exc:
        print(f"symposia: {exc.message}", file=sys.stderr)
        return None


def _describe(view: dict[str, object]) -> str:
    return "\n".join(f"{name}: {json.dumps(value)}" for name, value in view.items())


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


async def _create(args: argparse.Namespace, store: ApiKeyStore, settings: Settings) -> int:
    from symposia.storage.adopt import adopt

    was_open = not (
        settings.basic_auth_configured or settings.oidc_configured or await store.any_active()
    )
    changes = _changes(args)
    if changes is None:
        return 2
    info, key = await store.create(args.name)
    if changes:
        await _limits_of(store).set(info.id, changes)
    adopted = None
    if args.adopt_anonymous:
        adopted = await adopt(store.sessions, LOCAL.id, f"key:{info.id}")
    if was_open or adopted is not None:
        print(f"symposia: {_first_key_notice(adopted)}", file=sys.stderr)
    print(f"created API key {info.id} ({info.name}); it is shown only this once:")
    print(key)
    return 0


async def _listing(args: argparse.Namespace, store: ApiKeyStore, settings: Settings) -> int:
    from symposia.domain.models import utcnow
    from symposia.governance.limits import to_usd

    infos = await store.list()
    limits = await _limits_of(store).many([info.id for info in infos])
    now = utcnow()
    for info in infos:
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
        found = limits.get(info.id)
        if found is not None and found.expired(now) and not info.revoked_at:
            state = "expired"
        budget = ""
        if found is not None and found.max_budget_nanos is not None:
            spent = to_usd(found.spent_now(now))
            budget = f"  ${spent:.4f}/${to_usd(found.max_budget_nanos):.2f}"
            budget += f" {found.budget_period}" if found.budget_period != "none" else ""
        admin = "  admin" if found is not None and found.admin else ""
        print(
            f"{info.id}  {info.created_at:%Y-%m-%d %H:%M}  {state:<18}  {info.name}{budget}{admin}"
        )
    return 0


async def _show(args: argparse.Namespace, store: ApiKeyStore, settings: Settings) -> int:
    from symposia.domain.models import utcnow
    from symposia.governance.limits import KeyLimits

    info = next((i for i in await store.list() if i.id == args.id), None)
    limits = await _limits_of(store).get(args.id)
    if info is None and limits is None:
        print(f"symposia: no key {args.id}", file=sys.stderr)
        return 1
    view: dict[str, object] = {"name": info.name if info else "API_KEYS entry"}
    view.update((limits or KeyLimits(args.id)).to_dict(utcnow()))
    if info is not None:
        view["created_at"] = info.created_at.isoformat()
        view["revoked_at"] = info.revoked_at.isoformat() if info.revoked_at else None
    print(_describe(view))
    return 0


async def _update(args: argparse.Namespace, store: ApiKeyStore, settings: Settings) -> int:
    from symposia.domain.models import utcnow

    known = {i.id for i in await store.list()}
    if args.id not in known and not args.id.startswith("env-"):
        print(f"symposia: no key {args.id} (an API_KEYS entry's id starts env-)", file=sys.stderr)
        return 1
    changes = _changes(args)
    if changes is None:
        return 2
    if not changes:
        print("symposia: nothing to change; see `symposia keys update --help`", file=sys.stderr)
        return 2
    limits = await _limits_of(store).set(args.id, changes)
    print(_describe(limits.to_dict(utcnow())))
    return 0


async def _revoke(args: argparse.Namespace, store: ApiKeyStore, settings: Settings) -> int:
    if await store.revoke(args.id):
        print(f"revoked {args.id}")
        return 0
    print(f"symposia: no active key {args.id}", file=sys.stderr)
    return 1


def keys_command(args: argparse.Namespace) -> int:
    actions = {
        "create": _create,
        "list": _listing,
        "show": _show,
        "update": _update,
        "revoke": _revoke,
    }
    action = functools.partial(actions[args.keys_command], args)
    return asyncio.run(_with_keys(action))


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
    _limit_options(create_parser)
    keys_commands.add_parser("list", help="list keys (never their secrets)")
    show_parser = keys_commands.add_parser("show", help="a key's limits, spend and budget")
    show_parser.add_argument("id")
    update_parser = keys_commands.add_parser(
        "update", help="change a key's limits (an API_KEYS entry's too, by its env- id)"
    )
    update_parser.add_argument("id")
    _limit_options(update_parser)
    update_parser.add_argument(
        "--clear",
        action="append",
        choices=("max_budget_usd", "models", "rpm", "tpm", "max_parallel", "expires_at"),
        help="remove a limit (repeatable)",
    )
    revoke_parser = keys_commands.add_parser("revoke", help="revoke a key")
    revoke_parser.add_argument("id")
    keys_parser.set_defaults(handler=keys_command)


def _limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=float, metavar="USD", help="max spend per period")
    parser.add_argument(
        "--period",
        choices=("day", "week", "month", "none"),
        help="when the budget starts again (none: a one-off grant)",
    )
    parser.add_argument(
        "--models",
        action="append",
        metavar="PATTERN",
        help="a model it may use: a name or pattern such as openai/* (repeatable)",
    )
    parser.add_argument("--rpm", type=int, help="provider calls per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--max-parallel", type=int, help="provider calls at once")
    parser.add_argument("--expires", metavar="WHEN", help="30d, 12h, 2w or an ISO 8601 time")
    parser.add_argument("--metadata", metavar="JSON", help="a JSON object kept with the key")
    parser.add_argument(
        "--admin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="may manage keys and read all usage (/api/admin)",
    )

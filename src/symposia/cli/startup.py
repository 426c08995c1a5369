"""`symposia serve`: the settings, the exposure and the event log checked before a socket is
bound, then the server (one process, or a supervisor of several)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from sqlalchemy.exc import SQLAlchemyError

from symposia.events.log import EventLogUnreachableError
from symposia.observability.logging import configure_serve_logging
from symposia.security.api_keys import ApiKeyStore
from symposia.security.auth import StartupRefusedError, check_exposure
from symposia.settings import Settings, SettingsError, load_settings
from symposia.storage.db import DatabaseTimeouts, create_engine, session_factory
from symposia.storage.migrate import migrate, upgrade

logger = logging.getLogger("symposia.startup")


def serve(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = load_settings(**overrides)
        notes = _startup_notes(settings, args.workers)
        if args.workers > 1:
            _check_shared(settings, args.workers)
            from symposia.security.sessions import shared_secret

            settings = shared_secret(settings)  # one session secret for all the workers
            if settings.log_file and settings.log_file_max_bytes:
                # N processes cannot rotate one file: each appends, logrotate rotates.
                settings = settings.model_copy(update={"log_file_max_bytes": 0})
        asyncio.run(_check_exposure(settings))
        settings, fallback = asyncio.run(_check_event_log(settings, args.workers))
        notes += fallback
    except (SettingsError, StartupRefusedError, EventLogUnreachableError) as exc:
        print(f"symposia: {exc}", file=sys.stderr)
        return 2
    configure_serve_logging(settings)
    for note in notes:
        logger.warning(note)
    # The server's own imports wait until the checks have passed.
    if args.workers > 1:
        from uvicorn.config import STARTUP_FAILURE

        from symposia.workers import Supervisor, SupervisorConfig

        try:
            asyncio.run(migrate(settings))  # once: workers starting together would race
        except (OSError, SQLAlchemyError) as exc:
            print(f"symposia: the database could not be migrated: {exc}", file=sys.stderr)
            return STARTUP_FAILURE  # what a single process exits with when it cannot start
        gc.enable()  # the supervisor serves nothing: each worker tunes its own collector
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


async def _check_exposure(settings: Settings) -> None:
    """Refuse before binding a socket; the app checks again at start-up."""
    open_hosts = settings.allowed_host_names is None  # ALLOWED_HOSTS=*
    if settings.dev_mode or settings.basic_auth_configured:
        return
    if settings.host_is_loopback and not open_hosts:
        return
    engine = create_engine(settings.database_url, DatabaseTimeouts.of(settings, statement=False))
    try:
        await upgrade(engine)
        has_keys = await ApiKeyStore(session_factory(engine)).any_active()
    finally:
        await engine.dispose()
    check_exposure(settings, has_keys)


def _startup_notes(settings: Settings, workers: int) -> list[str]:
    """Warnings to log once logging is set up: variables that look like ours but are not
    read (`env_check`), and LOG_FILE left to logrotate under several workers."""
    from symposia.env_check import startup_warnings

    notes = startup_warnings()
    if workers > 1 and settings.log_file and settings.log_file_max_bytes:
        notes.append(
            f"LOG_FILE is not rotated by Symposia with --workers {workers} (the workers "
            "append to it; rotate it with logrotate, or run one process)"
        )
    return notes


async def _check_event_log(settings: Settings, workers: int = 1) -> tuple[Settings, list[str]]:
    """A Redis event log that cannot be reached stops start-up (the app checks again),
    unless it was only chosen by EVENT_LOG=auto for a single process: then, as the seeds
    that used Redis for rate limits only did, the server starts, its event log in memory
    and its rate limits failing open until Redis answers; a warning says so."""
    from symposia.events.select import build_event_log

    log = build_event_log(settings)
    try:
        await log.start()
    except EventLogUnreachableError as exc:
        if settings.event_log != "auto" or workers > 1:
            raise
        memory = settings.model_copy(update={"event_log": "memory"})
        return memory, [
            f"{exc}; starting without it, as EVENT_LOG=auto allows one process: event logs "
            "stay in this process's memory until a restart, and rate limits let requests "
            "through while Redis is unreachable (set EVENT_LOG=redis to refuse instead)"
        ]
    finally:
        await log.aclose()
    return settings, []

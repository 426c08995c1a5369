"""`symposia serve`: its options. What it does is in `startup`, loaded when it runs, so
the other commands do not pay for the server's imports."""

from __future__ import annotations

import argparse

from symposia.cli.parsing import Commands


def _worker_count(value: str) -> int:
    count = int(value) if value.isdigit() else 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {value!r}")
    return count


def _serve(args: argparse.Namespace) -> int:
    from symposia.cli.startup import serve

    return serve(args)


def register(commands: Commands) -> None:
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
    # The collector stays off through the server's imports: `tune_garbage_collector`
    # collects once and turns it on when the server has started.
    serve_parser.set_defaults(handler=_serve, enables_gc_itself=True)

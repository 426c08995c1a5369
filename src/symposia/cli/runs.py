"""`symposia runs list|show ID|export ID`: the runs kept on a server."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from symposia.cli.client import Api, client_parser, connect, resolve_id
from symposia.cli.exports import FORMATS, download, run_export_path
from symposia.cli.output import colour_of, console, note, speaker_line
from symposia.cli.parsing import Commands

if TYPE_CHECKING:
    from rich.text import Text

TOPIC_WIDTH = 60


def list_command(args: argparse.Namespace) -> int:
    """A table in a terminal; into a pipe, one tab-separated line a run with its whole id
    and topic (no column is cut to a width: a script reads them)."""
    with connect(args) as api:
        page = api.json("GET", "/api/runs", params={"limit": args.limit, "offset": args.offset})
    out = console()
    header = ("id", "status", "turns", "created", "topic")
    rows = [
        (
            run["id"],
            run["status"],
            f"{run['turn_count']}/{run['max_turns']}",
            (run["created_at"] or "")[:16].replace("T", " "),
            " ".join(run["topic"].split()),
        )
        for run in page["items"]
    ]
    if not out.is_terminal:
        for row in (header, *rows):
            print("\t".join(row))  # not rich's print, which expands tabs
        return 0
    from rich.table import Table

    table = Table(*header, box=None, pad_edge=False)
    table.columns[0].no_wrap = True
    for *fields, topic in rows:
        short = topic if len(topic) <= TOPIC_WIDTH else topic[: TOPIC_WIDTH - 1] + "…"
        table.add_row(*fields, short)
    out.print(table)
    return 0


def _run_id(api: Api, given: str) -> str:
    return resolve_id(api, given, "/api/runs", "run")


def _summary_lines(run: dict[str, Any]) -> list[Text]:
    from rich.text import Text

    ended = ", ".join(
        f"{name.replace('_', ' ')} {run[name]}"
        for name in ("ended_by", "stop_reason", "error_message")
        if run.get(name)
    )
    lines = [
        Text(f"run {run['id']}: {run['topic']}", style="bold"),
        note(f"status {run['status']}{f' ({ended})' if ended else ''}, policy {run['policy']}"),
        note(f"turns {run['turn_count']}/{run['max_turns']}, started {run['started_at']}"),
    ]
    for index, bot in enumerate(run["bots"]):
        line = Text(f"  {bot['name']}", style=f"bold {colour_of(index)}")
        line.append(f"  {bot['model'] or bot['kind']}", style="dim")
        if bot.get("system_prompt"):
            line.append(f"  {bot['system_prompt']}")
        lines.append(line)
    return lines


def show_command(args: argparse.Namespace) -> int:
    """The run's settings, then its transcript, each turn in its bot's colour."""
    with connect(args) as api:
        run = api.json("GET", run_export_path(_run_id(api, args.id), "json"))
    from rich.text import Text

    out = console()
    for line in _summary_lines(run):
        out.print(line)
    for message in run["messages"]:
        if message["bot_index"] is None:
            out.print(Text(f"{message['author']}: {message['content']}", style="bold"))
            continue
        status = "" if message["status"] == "complete" else f", {message['status']}"
        label = f"turn {message['turn'] + 1} · {message['author']}"
        colour = colour_of(message["bot_index"])
        out.print(speaker_line(label, colour, f"{message['model']}{status}"))
        out.print(message["content"], style=colour)
    return 0


def export_command(args: argparse.Namespace) -> int:
    with connect(args) as api:
        run_id = _run_id(api, args.id)
        fallback = f"run-{run_id}.{args.format}"
        saved = download(api, run_export_path(run_id, args.format), args.output, fallback)
    if saved is not None:
        print(saved)
    return 0


def register(commands: Commands) -> None:
    runs = commands.add_parser("runs", help="the runs on a server")
    actions = runs.add_subparsers(dest="runs_command", required=True)
    listing = client_parser(actions, "list", help="your runs, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(handler=list_command)
    show = client_parser(actions, "show", help="a run's settings and transcript")
    show.add_argument("id", help="the run's id, or any unique start of it (6+ characters)")
    show.set_defaults(handler=show_command)
    export = client_parser(actions, "export", help="save a run's transcript to a file")
    export.add_argument("id", help="the run's id, or any unique start of it (6+ characters)")
    export.add_argument("--format", choices=FORMATS, default="md", help="(default md)")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="where (default: the server's file name; - stdout)"
    )
    export.set_defaults(handler=export_command)

"""`symposia debate "topic"`: start a run and watch it in the terminal. The first Ctrl-C
stops the run on the server and shows how it ended; a second one leaves at once. When the
run waits for a person (an agent of kind `human`), the person types that agent's turn."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from symposia.cli.approvals import decide_call
from symposia.cli.client import Api, ApiError, CliError, client_parser, connect
from symposia.cli.exit_codes import INTERRUPTED
from symposia.cli.output import console, note
from symposia.cli.parsing import Commands
from symposia.cli.view import EventView

EXIT_CODES = {"completed": 0, "cancelled": INTERRUPTED}


def parse_bot(value: str) -> dict[str, Any]:
    """`NAME=MODEL[:PROMPT]`: the model ends at the first `:`; an empty model is the
    server's DEFAULT_MODEL."""
    name, sep, rest = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL[:PROMPT], got {value!r}")
    model, _, prompt = rest.partition(":")
    bot: dict[str, Any] = {"name": name.strip()}
    if model.strip():
        bot["model"] = model.strip()
    if prompt.strip():
        bot["system_prompt"] = prompt.strip()
    return bot


def parse_human(value: str) -> dict[str, Any]:
    """`--human NAME`: an agent of kind `human`, whose turns the person at the terminal types."""
    if not value.strip():
        raise argparse.ArgumentTypeError("a human agent needs a name")
    return {"name": value.strip(), "kind": "human"}


def run_body(args: argparse.Namespace) -> dict[str, Any]:
    """The body of `POST /api/run`: only what was given, so a preset keeps the rest."""
    body: dict[str, Any] = {"topic": args.topic}
    if args.preset:
        body["preset"] = args.preset
    if args.bot:
        body["bots"] = args.bot
        if args.tools:
            for bot in body["bots"]:
                if bot.get("kind") != "human":
                    bot["tools"] = list(args.tools)
    if args.turns is not None:
        body["max_turns"] = args.turns
    return body


def _stop(api: Api, run_id: str, view: EventView) -> None:
    view.out.print()
    view.out.print(note("stopping the run… (Ctrl-C again to leave at once)"))
    try:
        api.request("POST", f"/api/run/{run_id}/stop")
    except ApiError as exc:
        if exc.status != 409:  # 409: it had already ended
            raise
    view.out.print(note(f"stopped run {run_id}"))


LineReader = Callable[[str], str | None]


def read_line() -> LineReader:
    """What the person types: a prompt in a terminal; else the next line of standard input
    (None at its end: the run then waits, as the server says, until its timeout)."""
    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession  # not loaded by `symposia serve`

        session: PromptSession[str] = PromptSession()

        def prompt(label: str) -> str | None:
            try:
                return session.prompt(label)
            except EOFError:
                return None

        return prompt

    def next_line(label: str) -> str | None:
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    return next_line


# The server sends `awaiting_input` just before it stores the wait: a run still `running`
# right after the event is asked again for up to this long.
WAIT_STORED_SECONDS = 5.0


def waits_for_person(api: Api, run_id: str) -> bool:
    """Whether the run waits for a person now (not if the wait was answered already, a
    replayed event, or the run ended meanwhile)."""
    deadline = time.monotonic() + WAIT_STORED_SECONDS
    while True:
        status = api.json("GET", f"/api/run/{run_id}")["status"]
        if status != "running" or time.monotonic() >= deadline:
            return bool(status == "awaiting_input")
        time.sleep(0.1)


def answer_for_person(api: Api, run_id: str, data: dict[str, Any], read: LineReader) -> None:
    """The turn of the human agent the run waits for, typed here and sent as theirs."""
    if not waits_for_person(api, run_id):
        return
    name = data["name"]
    while (text := read(f"{name}> ")) is not None and not text.strip():
        pass  # an empty line is no turn: ask again
    if text is None:
        return
    try:
        api.request("POST", f"/api/run/{run_id}/messages", json={"content": text, "author": name})
    except ApiError as exc:
        if exc.status != 409:  # 409: the run ended while the person typed
            raise


def debate_command(args: argparse.Namespace) -> int:
    out = console()
    read = read_line()
    with connect(args) as api:
        run = api.json("POST", "/api/run", json=run_body(args))
        run_id = run["id"]
        out.print(note(f"run {run_id} · {args.topic} · up to {run['max_turns']} turns"))
        view = EventView(out)
        stream = api.follow(run["stream_url"])
        try:
            for event in stream.events():
                view.show(event)
                if event.type == "awaiting_input" and "call" in event.data:
                    decide_call(api, f"/api/run/{run_id}", event.data, read)
                elif event.type == "awaiting_input":
                    answer_for_person(api, run_id, event.data, read)
        except KeyboardInterrupt:
            _stop(api, run_id, view)
            for event in stream.events():  # to the final status; Ctrl-C again leaves
                view.show(event)
        out.print(note(f"run {run_id} {view.ending()}", style="bold"))
        status = view.final.get("status", "")
        if status == "error":
            raise CliError(f"run {run_id} failed: {view.final.get('error', '')}")
        return EXIT_CODES.get(status, 1)


def register(commands: Commands) -> None:
    parser = client_parser(
        commands, "debate", help="start a run and stream it", description=__doc__
    )
    parser.add_argument("topic")
    parser.add_argument("--preset", metavar="NAME", help="start from a preset (/api/presets)")
    parser.add_argument(
        "--bot",
        action="append",
        type=parse_bot,
        metavar="NAME=MODEL[:PROMPT]",
        help="a bot (repeat for each; at least two). MODEL empty: the server's default",
    )
    parser.add_argument(
        "--human",
        dest="bot",
        action="append",
        type=parse_human,
        metavar="NAME",
        help="an agent played by you: its turns are typed here (in order among the --bot)",
    )
    parser.add_argument(
        "--tools",
        type=lambda text: [t for t in text.split(",") if t],
        default=None,
        metavar="SERVER[,SERVER.TOOL...]",
        help="MCP servers or tools every bot may call (GET /api/tools lists them)",
    )
    parser.add_argument(
        "--turns",
        type=int,
        metavar="N",
        help="max_turns (server default 6; a preset's rounds may need more: then it is refused)",
    )
    parser.set_defaults(handler=debate_command)

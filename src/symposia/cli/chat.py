"""`symposia chat`: a conversation in the terminal, replies streamed as they are written.

Lines starting with `/` are commands (`/help`). `/model NAME` changes the conversation's
default model on the server (PATCH), so the choice lasts: the replies after it, and the
conversation opened again with `--conversation`, use it. Before the first message there is
no conversation yet: the model is then the one it is created with.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from symposia.cli.approvals import decide_call
from symposia.cli.client import (
    Api,
    ApiError,
    CliError,
    Event,
    client_parser,
    connect,
    resolve_id,
)
from symposia.cli.exports import FORMATS, conversation_export_path, download
from symposia.cli.output import console, note
from symposia.cli.parsing import Commands
from symposia.cli.view import EventView

if TYPE_CHECKING:
    from rich.console import Console

EARLIER_SHOWN = 20  # messages of a resumed conversation shown before the prompt
HELP = """\
/model NAME        answer with NAME from now on (the conversation's default model)
/model             show the model
/new               start a new conversation (with the same model)
/export md [FILE]  save the conversation (md, pdf or json) to a file and print where
/help              this
/quit              leave (Ctrl-D too)"""


def _resume_path(seen: list[Event]) -> str | None:
    """A reply's stream is picked up at its conversation's stream, named by its events."""
    for event in seen:
        if event.data.get("conversation_id"):
            return f"/api/conversations/{event.data['conversation_id']}/stream"
    return None


@dataclass
class Chat:
    api: Api
    out: Console
    model: str | None
    conversation_id: str | None = None

    def open(self, conversation_id: str) -> None:
        """Continue a conversation: its model, and its latest messages for context."""
        conversation = self.api.json("GET", f"/api/conversations/{conversation_id}")
        self.conversation_id, self.model = conversation["id"], conversation["default_model"]
        count = conversation["message_count"]
        offset = max(0, count - EARLIER_SHOWN)
        page = self.api.json(
            "GET",
            f"/api/conversations/{conversation_id}/messages",
            params={"limit": EARLIER_SHOWN, "offset": offset},
        )
        from rich.text import Text

        self.out.print(note(f"conversation {conversation_id}, {count} messages"))
        for message in page["items"]:
            style = "bold" if message["role"] == "user" else "cyan"
            self.out.print(
                Text(f"{message['author']}: ", style="dim") + Text(message["content"], style=style)
            )

    def send(self, text: str) -> None:
        body: dict[str, Any] = {"message": text}
        if self.conversation_id is not None:
            body["conversation_id"] = self.conversation_id
        elif self.model is not None:
            body["model"] = self.model
        stream = self.api.follow("/api/chat/stream", method="POST", body=body, resume=_resume_path)
        view = EventView(self.out)
        try:
            for event in stream.events():
                view.show(event)
                self.conversation_id = event.data.get("conversation_id") or self.conversation_id
                if event.type == "awaiting_input" and self.conversation_id is not None:
                    owner = f"/api/conversations/{self.conversation_id}"
                    decide_call(self.api, owner, event.data, _ask)
        except KeyboardInterrupt:
            view.out.print()
            self.out.print(note("(stopped watching; the reply goes on on the server)"))
            return
        if view.final.get("status") != "completed":
            self.out.print(note(f"reply {view.ending()}"))

    def switch_model(self, name: str) -> None:
        if not name:
            self.out.print(note(f"model: {self.model or 'the server default'}"))
            return
        if self.conversation_id is not None:
            path = f"/api/conversations/{self.conversation_id}"
            self.model = self.api.json("PATCH", path, json={"default_model": name})["default_model"]
        else:
            self.model = name
        self.out.print(note(f"model: {self.model}"))

    def new(self) -> None:
        self.conversation_id = None
        self.out.print(note("new conversation"))

    def export(self, argument: str) -> None:
        fmt, _, output = argument.partition(" ")
        fmt = fmt or "md"
        if fmt not in FORMATS:
            raise CliError(f"/export takes {', '.join(FORMATS)}, not {fmt!r}")
        if self.conversation_id is None:
            raise CliError("nothing to export yet: send a message first")
        path = conversation_export_path(self.conversation_id, fmt)
        fallback = f"conversation-{self.conversation_id}.{fmt}"
        saved = download(self.api, path, output.strip() or None, fallback)
        self.out.print(f"saved {saved}")

    def command(self, line: str) -> bool:
        """Run a `/command`; False when it is time to leave."""
        name, _, argument = line[1:].partition(" ")
        actions: dict[str, Callable[[str], None]] = {
            "model": self.switch_model,
            "new": lambda _: self.new(),
            "export": self.export,
            "help": lambda _: self.out.print(HELP),
        }
        if name in ("quit", "exit"):
            return False
        if name not in actions:
            raise CliError(f"unknown command /{name}: /help lists them")
        actions[name](argument.strip())
        return True


def _ask(label: str) -> str | None:
    """A one-line answer (a tool call's approval) asked in the middle of a reply."""
    try:
        return input(label)
    except EOFError:
        return None


def _lines() -> Iterator[str]:
    """What the person types: a prompt with history (up-arrow) in a terminal; lines of
    standard input otherwise. Ctrl-C clears the line, Ctrl-D ends."""
    if not sys.stdin.isatty():
        yield from (line.rstrip("\n") for line in sys.stdin)
        return
    # Loaded here, not with the module: `symposia serve` registers this command too.
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    session: PromptSession[str] = PromptSession(history=InMemoryHistory())
    while True:
        try:
            yield session.prompt("> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return


class RefusedModelError(CliError):
    """The model the command was started with is not one the server takes."""


def chat_command(args: argparse.Namespace) -> int:
    out, err = console(), console(stderr=True)
    with connect(args) as api:
        chat = Chat(api, out, args.model)
        if args.conversation:
            chat.open(resolve_id(api, args.conversation, "/api/conversations", "conversation"))
        out.print(note("/help for commands, /quit to leave"))
        for line in _lines():
            text = line.strip()
            if not text:
                continue
            try:
                if not text.startswith("/"):
                    _send(chat, text, started_with=args.model)
                elif not chat.command(text):
                    break
            except RefusedModelError:
                raise
            except CliError as exc:  # a refused message or command: the chat goes on
                err.print(note(f"symposia: {exc}", style="red"))
    return 0


def _send(chat: Chat, text: str, started_with: str | None) -> None:
    """A refusal of the `--model` the command was started with ends the command (exit 1,
    as `debate` does for its bots): every message would be refused the same way."""
    first = chat.conversation_id is None and started_with is not None
    try:
        chat.send(text)
    except ApiError as exc:
        if first and chat.model == started_with and exc.field in ("model", "default_model"):
            raise RefusedModelError(str(exc)) from exc
        raise


def register(commands: Commands) -> None:
    parser = client_parser(commands, "chat", help="chat with a model", description=__doc__)
    parser.add_argument("--model", metavar="M", help="the model (default: the server's)")
    parser.add_argument(
        "--conversation",
        metavar="ID",
        help="continue this conversation (its id, or any unique start of it: 6+ characters)",
    )
    parser.set_defaults(handler=chat_command)

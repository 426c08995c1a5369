"""`symposia chat` typed into in a pseudo-terminal: replies streamed, `/model` switches the
conversation's model on the server, `/new` starts another conversation, `/export` saves
one, the up arrow brings back the last line, `/quit` leaves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pexpect

from tests.test_cli_debate import CuttingProxy
from tests.test_cli_server import COUNTED, ESCAPE, Server, piped, server, spawn

__all__ = ["server"]  # a fixture used here

UP = "\x1b[A"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x08")
PROMPT = "\x1b[?2004h"  # prompt_toolkit turns bracketed paste on as each prompt starts


def _conversations(server: Server) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = server.get("/api/conversations")["items"]
    return items


def _say(child: pexpect.spawn, line: str) -> str:
    """Type `line`, wait for the next prompt: what was shown meanwhile, escapes removed."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    return ANSI.sub("", child.before)


def test_chat_commands_in_a_terminal(server: Server, tmp_path: Path) -> None:
    before = {c["id"] for c in _conversations(server)}
    child = spawn(server, "chat", "--model", "scripted/echo", cwd=tmp_path)
    child.expect_exact("/help for commands")
    child.expect_exact(PROMPT)
    shown = _say(child, "hello there")
    assert "── assistant (scripted/echo)\r\nYou said: hello there" in shown
    assert "\x1b[36mYou\x1b[0m" in child.before  # the reply in colour

    assert "model: scripted/count" in _say(child, "/model scripted/count")
    assert COUNTED in _say(child, "count please")
    (first,) = [c for c in _conversations(server) if c["id"] not in before]
    assert first["default_model"] == "scripted/count"  # switched on the server: it lasts
    messages = server.get(f"/api/conversations/{first['id']}/messages")["items"]
    assert [m["model"] for m in messages if m["role"] == "assistant"] == [
        "scripted/echo",
        "scripted/count",
    ]

    saved = re.search(r"saved (\S+\.json)", _say(child, "/export json"))
    assert saved is not None
    assert json.loads((tmp_path / saved.group(1)).read_text())["id"] == first["id"]

    shown = _say(child, "/export md")
    saved = re.search(r"saved (\S+\.md)", shown)
    if saved is not None:
        markdown = (tmp_path / saved.group(1)).read_text()
        assert "hello there" in markdown
        assert COUNTED in markdown
    else:  # before the server has Markdown exports
        assert f"this server has no /api/conversations/{first['id']}/export.md" in shown

    assert "unknown command /bogus: /help lists them" in _say(child, "/bogus")
    assert "/export md [FILE]" in _say(child, "/help")
    assert "new conversation" in _say(child, "/new")
    child.send(UP * 6)  # back past /new, /help, /bogus, /export md, /export json
    assert COUNTED in _say(child, "")  # "count please" again, in a new conversation
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    new = [c for c in _conversations(server) if c["id"] not in before]
    assert len(new) == 2  # /new started a second one, on the model chosen
    second = next(c for c in new if c["id"] != first["id"])
    assert second["default_model"] == "scripted/count"
    assert second["message_count"] == 2


def test_chat_continues_a_conversation_and_refuses_bad_models(server: Server) -> None:
    started = piped(
        "chat", "--model", "scripted/echo", "--server", server.url,
        key=server.key, stdin="first words\n",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert ESCAPE not in started.stdout
    conversation = _conversations(server)[0]
    assert conversation["message_count"] == 2

    again = piped(
        "chat", "--conversation", conversation["id"], "--server", server.url,
        key=server.key, stdin="/model nope/x\nsecond words\n",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"conversation {conversation['id']}, 2 messages" in again.stdout
    assert "user: first words" in again.stdout  # the earlier messages, for context
    assert "You said: second words" in again.stdout
    assert "unknown provider 'nope'" in again.stderr  # said, and the chat went on
    assert "Traceback" not in again.stderr

    missing = piped("chat", "--conversation", "nope", "--server", server.url, key=server.key)
    assert missing.returncode == 1
    assert missing.stderr.startswith("symposia: not found:")


def test_a_reply_cut_off_is_resumed_at_its_conversation(server: Server) -> None:
    """The reply's stream (POST /api/chat/stream) is cut mid-way: the client picks it up at
    GET /api/conversations/{id}/stream with Last-Event-ID, and shows the reply once."""
    port = int(server.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(upstream=port, limit=700)
    try:
        result = piped(
            *("chat", "--model", "scripted/count", "--server", f"http://127.0.0.1:{proxy.port}"),
            key=server.key,
            stdin="count\n",
        )
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    resumed = [h for h in proxy.heads if h.startswith(b"GET /api/conversations/")]
    assert resumed, "the reply was not cut: the test proves nothing"
    assert all(b"last-event-id" in h.lower() for h in resumed)
    assert result.stdout.splitlines()[1:] == ["── assistant (scripted/count)", COUNTED]

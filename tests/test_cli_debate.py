"""`symposia debate` as a person sees it: in a pseudo-terminal, each bot in its colour under
a heading naming the turn and the speaker; piped, plain text; Ctrl-C stops the run on the
server, a second one leaves at once; a dropped connection is picked up with Last-Event-ID,
no event shown twice or lost."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.live import free_port
from tests.test_cli_server import (
    COUNTED,
    ESCAPE,
    RUN_ID,
    Server,
    piped,
    server,
    spawn,
)

__all__ = ["server"]  # a fixture used here

CYAN, MAGENTA = "\x1b[1;36m", "\x1b[1;35m"  # bold: bot 0's and bot 1's headings
BOTS = ("--bot", "A=scripted/count", "--bot", "B=scripted/echo:Quote.")


def test_debate_in_a_terminal_each_bot_in_its_colour(server: Server) -> None:
    child = spawn(server, "debate", "Count with me", *BOTS, "--turns", "3")
    child.expect(pexpect.EOF)
    child.close()
    out = child.before
    assert child.exitstatus == 0, out
    assert f"{CYAN}turn 1 · A" in out
    assert f"{MAGENTA}turn 2 · B" in out
    assert f"{CYAN}turn 3 · A" in out
    assert "\x1b[36m1\x1b[0m" in out  # A's text in A's colour, as it streams
    assert "\x1b[35mYou\x1b[0m\x1b[35m said:" in out  # B's in B's
    assert "completed (ended by max_turns)" in out
    run_id = RUN_ID.search(out)
    assert run_id is not None
    assert server.get(f"/api/run/{run_id.group(1)}")["status"] == "completed"


def test_piped_output_is_plain_text(server: Server) -> None:
    result = piped("debate", "Count", *BOTS, "--turns", "2", "--server", server.url, key=server.key)
    assert result.returncode == 0, result.stderr
    assert ESCAPE not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[1:3] == ["── turn 1 · A (scripted/count)", COUNTED]
    assert lines[3] == "── turn 2 · B (scripted/echo)"
    assert lines[4].startswith("You said: ")
    assert lines[5].endswith("completed (ended by max_turns)")


def test_ctrl_c_stops_the_run_on_the_server(server: Server) -> None:
    child = spawn(server, "debate", "Count for long", *BOTS, "--turns", "200")
    child.expect(RUN_ID)
    run_id = child.match.group(1)
    child.expect("turn 2 · B")
    child.sendintr()
    child.expect("stopping the run")
    child.expect(f"stopped run {run_id}")
    child.expect(f"run {run_id} cancelled")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    run = server.get(f"/api/run/{run_id}")
    assert run["status"] == "cancelled"
    assert run["turn_count"] < 200


# -- a second Ctrl-C: a server whose stop never answers ---------------------------------------


def _token_stream() -> Iterator[bytes]:
    yield b'id: 1\nevent: turn_start\ndata: {"turn": 0, "bot": 0, "name": "A"}\n\n'
    for seq in range(2, 10_000):
        time.sleep(0.05)
        data = f'{{"turn": 0, "bot": 0, "delta": " {seq}"}}'
        yield f"id: {seq}\nevent: token\ndata: {data}\n\n".encode()


async def _create(request: Request) -> Response:
    return JSONResponse({"id": "f" * 32, "max_turns": 9, "stream_url": "/api/stream/f"}, 201)


async def _stream(request: Request) -> Response:
    return StreamingResponse(_token_stream(), media_type="text/event-stream")


async def _stop_never(request: Request) -> Response:
    await request.app.state.never.wait()
    return JSONResponse({})


@contextlib.contextmanager
def _stuck_server(directory: Path) -> Iterator[Server]:
    """Streams tokens for ever; its stop endpoint never answers."""
    app = Starlette(
        routes=[
            Route("/api/run", _create, methods=["POST"]),
            Route("/api/stream/f", _stream),
            Route("/api/run/{id}/stop", _stop_never, methods=["POST"]),
        ]
    )
    app.state.never = asyncio.Event()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", "", directory)
    finally:
        uv.should_exit = True
        uv.force_exit = True
        thread.join(timeout=5)


def test_second_ctrl_c_leaves_at_once(tmp_path: Path) -> None:
    with _stuck_server(tmp_path) as stuck:
        child = spawn(stuck, "debate", "Stuck", "--turns", "9")
        child.expect(" 5")
        child.sendintr()
        child.expect("stopping the run")
        time.sleep(0.3)  # the stop request is waiting for its answer
        assert child.isalive()
        started = time.monotonic()
        child.sendintr()
        child.expect(pexpect.EOF, timeout=5)
        child.close()
        assert time.monotonic() - started < 2
        assert child.exitstatus == 130
        assert "stopped run" not in child.before


# -- a dropped connection ---------------------------------------------------------------------


@dataclass
class CuttingProxy:
    """A TCP proxy to `upstream` that cuts every connection once it has passed `limit`
    bytes from the server, as a flaky network does. `heads` are the requests it saw."""

    upstream: int
    limit: int
    port: int = field(default_factory=free_port)
    heads: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        head = client.recv(65536)
        self.heads.append(head)
        upstream.sendall(head)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        passed = 0
        with contextlib.suppress(OSError):
            while passed < self.limit:
                data = upstream.recv(min(4096, self.limit - passed))
                if not data:
                    break
                client.sendall(data)
                passed += len(data)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(4096):
                target.sendall(data)

    def close(self) -> None:
        self.listener.close()


def test_dropped_connections_resume_with_last_event_id(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(upstream=port, limit=1500)
    try:
        result = piped(
            *("debate", "Count", "--bot", "A=scripted/count", "--bot", "B=scripted/count"),
            *("--turns", "6", "--server", f"http://127.0.0.1:{proxy.port}"),
            key=server.key,
        )
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr
    resumed = [head for head in proxy.heads if b"last-event-id" in head.lower()]
    assert len(resumed) >= 2, "the connection was not cut: the test proves nothing"
    lines = result.stdout.splitlines()[1:-1]
    speakers = ["A", "B"] * 3
    expected: list[str] = []
    for turn, name in enumerate(speakers, start=1):
        expected += [f"── turn {turn} · {name} (scripted/count)", COUNTED]
    assert lines == expected


def test_parallel_rounds_speaker_choices_and_verdicts(server: Server) -> None:
    """`du2023`: three agents stream each round at once; each turn is shown whole, once,
    in order, then the vote. `panel`: the supervisor's choice before each turn."""
    rounds = piped("debate", "Q", "--preset", "du2023", "--server", server.url, key=server.key)
    assert rounds.returncode == 0, rounds.stderr
    lines = rounds.stdout.splitlines()[1:]
    for turn in range(9):
        assert lines[2 * turn] == f"── turn {turn + 1} · Agent {turn % 3 + 1} (scripted/count)"
        assert lines[2 * turn + 1] == COUNTED
    assert lines[18] == f"verdict (vote): {COUNTED}  votes: {COUNTED.lower()}: 3"
    assert lines[19].endswith("completed (ended by max_rounds)")

    panel = piped(
        *("debate", "Q", "--preset", "panel", "--turns", "1"),
        *("--server", server.url),
        key=server.key,
    )
    assert panel.returncode == 0, panel.stderr
    lines = panel.stdout.splitlines()[1:]
    assert lines[0].startswith("→ next speaker Analyst (fallback): 1 2 3")
    assert lines[1:3] == ["── turn 1 · Analyst (scripted/count)", COUNTED]

"""What one `/v1` request costs Symposia, in a figure a busy machine cannot blur.

The relay benchmark (openai_relay.py) reads process CPU time, which on a shared machine
rises with everyone else's load. This one calls the app as ASGI in this process (no
uvicorn, no sockets on Symposia's side; the upstream is the fake server of the
benchmarks, over loopback), runs 50 concurrent 64-token streams, and prints:

- Python function calls per request (cProfile's count: the same on a quiet machine and
  a busy one, so a change can be judged by it even when CPU times jump by 30%);
- CPU time per request in this process (as noisy as any CPU time; take the minimum).

    .venv/bin/python bench/request_cost.py [chat|tools|responses|responses-no-store] ...
        [--requests 2000] [--rounds 5] [--no-profile] [--budget] [--top N] [--dump PATH]

`--budget` gives the key a budget (every request is admitted against it and settled);
`--top N` prints the profile's N functions of most cumulative time; `--dump PATH` writes
the profile (pstats) to PATH.<kind>.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLIENTS = 50
Asgi = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Any], Awaitable[None]]


def request_of(kind: str) -> tuple[str, bytes]:
    model = "openai/tools" if kind == "tools" else "openai/gpt-4o-mini"
    if kind.startswith("responses"):
        body = {"model": model, "input": "go", "stream": True, "store": kind == "responses"}
        return "/v1/responses", orjson.dumps(body)
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    return "/v1/chat/completions", orjson.dumps(body)


async def one(app: Asgi, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """One request as uvicorn would hand it over; `http.disconnect` once it is answered."""
    answered = asyncio.Event()
    read = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    assert status == 200, f"status {status}"


async def measure(
    kind: str,
    key: str,
    requests: int,
    rounds: int,
    profile: bool,
    top: int = 0,
    dump: str | None = None,
) -> None:
    from symposia.app import create_app
    from symposia.observability.logging import configure_serve_logging
    from symposia.server import tune_garbage_collector
    from symposia.settings import load_settings

    settings = load_settings()
    configure_serve_logging(settings)
    app = create_app(settings)
    path, body = request_of(kind)
    headers = [
        (b"host", b"localhost"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {key}".encode()),
    ]

    async def load(per_client: int) -> None:
        async def client() -> None:
            for _ in range(per_client):
                await one(app, path, body, headers)

        await asyncio.gather(*(client() for _ in range(CLIENTS)))

    async with app.router.lifespan_context(app):
        tune_garbage_collector()  # as `serve` does
        await load(4)  # warm up: imports, the upstream pool
        cpu = []
        for _ in range(rounds):
            started = time.process_time()
            await load(requests // CLIENTS)
            cpu.append((time.process_time() - started) / requests * 1e3)
        cpu.sort()
        print(
            f"{kind}: cpu per request in process {cpu[0]:.3f} ms min, "
            f"{cpu[len(cpu) // 2]:.3f} ms median ({rounds} rounds of {requests})"
        )
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await load(1000 // CLIENTS)
            profiler.disable()
            found = pstats.Stats(profiler)
            if os.environ.get("PROFILE_TO"):
                found.dump_stats(os.environ["PROFILE_TO"])
            if dump:
                found.dump_stats(f"{dump}.{kind}")
            stats: Any = found.stats  # type: ignore[attr-defined]
            calls = sum(entry[1] for entry in stats.values())
            print(f"{kind}: python calls per request {calls / 1000:.0f}")
            if top:
                found.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "kinds",
        nargs="*",
        default=["chat"],
        choices=["chat", "tools", "responses", "responses-no-store"],
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-profile", action="store_true", help="skip the call count")
    parser.add_argument("--budget", action="store_true", help="the key has a budget")
    parser.add_argument("--top", type=int, default=0, help="print the profile's top N")
    parser.add_argument("--dump", help="write the profile (pstats) to DUMP.<kind>")
    args = parser.parse_args()
    fake = subprocess.Popen(  # it prints its port, then nothing
        [sys.executable, str(Path(__file__).with_name("fake_upstream.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    port = fake.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # As openai_relay.py configures it: an API key and a rate limit, not DEV_MODE.
            os.environ.update(
                {
                    "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                    "LOG_LEVEL": "WARNING",
                    "OPENAI_API_KEY": "sk-bench",
                    "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
                    "RATE_LIMIT_CHAT": "1000000/minute",
                }
            )
            created = subprocess.run(
                [sys.executable, "-m", "symposia", "keys", "create", "--name", "bench"]
                + (["--budget", "1000000", "--period", "month"] if args.budget else []),
                capture_output=True,
                text=True,
                check=True,
            )
            key = created.stdout.strip().splitlines()[-1]
            for kind in args.kinds:
                uvloop.run(
                    measure(
                        kind,
                        key,
                        args.requests,
                        args.rounds,
                        not args.no_profile,
                        args.top,
                        args.dump,
                    )
                )
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)


if __name__ == "__main__":
    main()

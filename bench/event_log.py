"""Event log figures (prints them; it is not a test): the Redis Streams log against memory.

1. appends, in this process: the time one awaited append takes (what a turn adds per token),
   and the throughput of `--streams` turns appending at once (appends are group-committed).
2. viewers: a server process holding one stream behind the project's SSE response
   (`streaming.sse.event_stream_response`, the one `/api/stream/{id}` returns; no auth or
   database in front, so the figures are the log's and the stream's), and `--viewers` raw
   loopback sockets in this process. Prints the server's memory per idle viewer, the time
   from an append to its receipt by the last viewer (p50/p99; this process's own lag
   reading 10,000 sockets included), and the server's CPU per delivered event.

    .venv/bin/python bench/event_log.py [--viewers 10000] [--events 30] [--log memory redis]

Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/0) for the Redis figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.live import free_port

from symposia.events.memory import InMemoryEventLog
from symposia.events.redis import RedisEventLog
from symposia.events.select import ManagedEventLog

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
STREAM = "bench"
ID_LINE = re.compile(rb"(?m)^id: ?(\d+)")


def make_log(kind: str, prefix: str) -> ManagedEventLog:
    if kind == "redis":
        return RedisEventLog(REDIS_URL, prefix=prefix, retention_seconds=60)
    return InMemoryEventLog()


async def bench_appends(kind: str, tokens: int, streams: int) -> dict[str, float]:
    log = make_log(kind, f"symposia-bench:{uuid.uuid4().hex}:")
    await log.start()
    try:
        await log.create("one")
        start = time.perf_counter()
        for _ in range(tokens):
            await log.append("one", "token", {"turn": 0, "bot": 0, "delta": " word"})
        single = (time.perf_counter() - start) / tokens

        async def turn(stream: str) -> None:
            await log.create(stream)
            for _ in range(tokens // streams * 4):
                await log.append(stream, "token", {"turn": 0, "bot": 0, "delta": " word"})

        start = time.perf_counter()
        await asyncio.gather(*(turn(f"s{i}") for i in range(streams)))
        elapsed = time.perf_counter() - start
        for stream in ["one", *(f"s{i}" for i in range(streams))]:
            await log.close(stream)
        return {"us_per_append": single * 1e6, "concurrent_per_s": tokens * 4 / elapsed}
    finally:
        await log.aclose()


# --- the server process ------------------------------------------------------------------


def serve(port: int, kind: str) -> None:
    """The viewers' server: one stream, its SSE, and an appender driven over HTTP."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from symposia.streaming.sse import ActiveStreams, event_stream_response

    log = make_log(kind, f"symposia-bench:{uuid.uuid4().hex}:")
    active = ActiveStreams()
    appended: dict[int, float] = {}

    async def stream(request: Request) -> Response:
        return event_stream_response(log, STREAM, 0, active, heartbeat=60, send_timeout=60)

    async def append(request: Request) -> Response:
        count = int(request.query_params["n"])
        interval = float(request.query_params["interval"])
        for _ in range(count):
            called = time.monotonic()  # a Redis viewer may receive it before append returns
            event = await log.append(STREAM, "token", {"turn": 0, "bot": 0, "delta": " word"})
            appended[event.seq] = called
            await asyncio.sleep(interval)
        return JSONResponse({"appended": count})

    async def stats(request: Request) -> Response:
        times = os.times()
        return JSONResponse(
            {
                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # grows only
                "cpu": times.user + times.system,
                "streams": active.count,
                "appended": appended,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await log.start()
        await log.create(STREAM)
        yield
        await log.close(STREAM)
        await log.aclose()

    app = Starlette(
        routes=[
            Route("/stream", stream),
            Route("/append", append, methods=["POST"]),
            Route("/stats", stats),
        ],
        lifespan=lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=8192)


# --- the viewers ---------------------------------------------------------------------------


class Viewers:
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.last_receipt: dict[int, float] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, port: int, index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        self.seen.append(0)
        self.tasks.append(asyncio.create_task(self.follow(reader, writer, index)))

    async def follow(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                now = time.monotonic()
                for seq in ID_LINE.findall(chunk):
                    self.last_receipt[int(seq)] = now  # later readers overwrite: the last one
                    self.seen[index] += 1
        finally:
            writer.close()


async def stats(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/stats") as response:
        result: dict[str, Any] = await response.json()
        return result


async def bench_viewers(kind: str, count: int, events: int, interval: float) -> dict[str, float]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", str(port), kind
    )
    base = f"http://127.0.0.1:{port}"
    viewers = Viewers()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    before = await stats(http, base)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            for start in range(0, count, 500):
                await asyncio.gather(
                    *(viewers.open(port, i) for i in range(start, min(count, start + 500)))
                )
            for _ in range(300):  # the server has accepted them all
                if (await stats(http, base))["streams"] >= count:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)
            idle = await stats(http, base)
            async with http.post(f"{base}/append?n={events}&interval={interval}") as response:
                await response.read()
            for _ in range(1200):  # every viewer has every event, or a minute passed
                if min(viewers.seen) >= events:
                    break
                await asyncio.sleep(0.05)
            after = await stats(http, base)
        appended = {int(seq): at for seq, at in after["appended"].items()}
        delays = sorted(viewers.last_receipt[seq] - at for seq, at in appended.items())
        delivered = sum(viewers.seen)
        return {
            "kb_per_idle_viewer": (idle["rss"] - before["rss"]) / count / 1024,
            "delivered": delivered,
            "missing": count * events - delivered,
            "last_receipt_p50_ms": statistics.median(delays) * 1000,
            "last_receipt_p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000,
            "server_cpu_us_per_delivered_event": (after["cpu"] - idle["cpu"]) / delivered * 1e6,
        }
    finally:
        for task in viewers.tasks:
            task.cancel()
        await asyncio.gather(*viewers.tasks, return_exceptions=True)
        if server.returncode is None:
            server.terminate()
        await server.wait()


async def main(args: argparse.Namespace) -> None:
    print(f"cpus: {os.cpu_count()}  open files: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
    for kind in args.log:
        figures = await bench_appends(kind, args.tokens, args.streams)
        print(f"appends  {kind:6} {json.dumps({k: round(v, 1) for k, v in figures.items()})}")
    for kind in args.log:
        figures = await bench_viewers(kind, args.viewers, args.events, args.interval)
        print(f"viewers  {kind:6} {json.dumps({k: round(v, 2) for k, v in figures.items()})}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", nargs="+", default=["memory", "redis"])
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.2)
    asyncio.run(main(parser.parse_args()))

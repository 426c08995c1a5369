"""Soak and leak check (prints figures; it is not a test).

Starts `symposia serve` as a process (scripted models, SQLite, an API key) on a free
loopback port, then:

1. soak: `--clients` concurrent clients each open SSE streams back to back for `--seconds`
   (`/v1/chat/completions` streamed; a `--chat-share` of them `/api/chat/stream`, which
   also writes to the database), the scripted model paced by `--token-delay`. Every stream
   must end properly (`[DONE]`, or a `done` event with status completed): errors must be 0.
2. leak check: `--cycles` open/abort cycles, `--viewers` at a time: open a stream, read
   its first bytes, drop the connection. The server's RSS, asyncio tasks (from /metrics)
   and open file descriptors (from /proc) must come back to where they were before.

    .venv/bin/python bench/soak.py [--clients 1000] [--seconds 60] [--cycles 1000]

Exit status 1 if a stream failed or tasks or descriptors did not come back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.served import served

MODEL = "scripted/count"
SETTLE_SECONDS = 15.0
# Tolerances for "back at baseline": a few tasks and descriptors may be in flight (the
# scrape itself, a pooled database connection); memory is allowed some allocator slack.
TASK_SLACK = 3
FD_SLACK = 3
RSS_SLACK_MB = 20.0


@dataclass
class Snapshot:
    rss_mb: float
    fds: int
    tasks: int
    loop_lag: float

    def __str__(self) -> str:
        return (
            f"rss {self.rss_mb:7.1f} MB  fds {self.fds:5d}  tasks {self.tasks:5d}  "
            f"loop lag {self.loop_lag * 1000:7.1f} ms"
        )


@dataclass
class Soak:
    streams: int = 0
    tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    max_lag: float = 0.0
    max_tasks: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def snapshot(session: aiohttp.ClientSession, base: str, pid: int) -> Snapshot:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return Snapshot(
        rss_mb(pid),
        len(os.listdir(f"/proc/{pid}/fd")),
        int(values["symposia_asyncio_tasks"]),
        values["symposia_event_loop_lag_seconds"],
    )


def v1_body(tokens: int) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "count"}],
        "max_tokens": tokens,
        "stream": True,
    }


async def one_stream(
    session: aiohttp.ClientSession, base: str, chat: bool, tokens: int, result: Soak
) -> None:
    """One stream read to its end; anything but a proper end counts as an error."""
    started = time.perf_counter()
    if chat:
        url, body = f"{base}/api/chat/stream", {"message": "count", "model": MODEL}
        end, ok = b"event: done", b'"status":"completed"'
    else:
        url, body = f"{base}/v1/chat/completions", v1_body(tokens)
        end, ok = b"data: [DONE]", b"data: [DONE]"
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                try:
                    code = (await response.json(content_type=None)).get("code", "")
                except ValueError:
                    code = ""
                result.error(f"{'chat' if chat else 'v1'} http {response.status} {code}".strip())
                return
            finished = False
            async for line in response.content:
                if line.startswith(b"data: {") and (b'"content":"' in line or b'"delta"' in line):
                    result.tokens += 1
                if line.startswith(end):
                    finished = True
                if finished and ok in line:
                    result.streams += 1
                    result.durations.append(time.perf_counter() - started)
                    return
            result.error("stream ended without its end marker")
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.error(type(exc).__name__)


async def soak(args: argparse.Namespace, base: str, headers: dict[str, str], pid: int) -> Soak:
    result = Soak()
    deadline = time.monotonic() + args.seconds
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.stream_timeout)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:

        async def client(index: int) -> None:
            chat = index < args.clients * args.chat_share
            while time.monotonic() < deadline:
                await one_stream(session, base, chat, args.tokens, result)

        async def watch() -> None:
            async with aiohttp.ClientSession(headers=headers) as probe:
                while time.monotonic() < deadline:
                    await asyncio.sleep(1)
                    with_metrics = await snapshot(probe, base, pid)
                    result.max_lag = max(result.max_lag, with_metrics.loop_lag)
                    result.max_tasks = max(result.max_tasks, with_metrics.tasks)

        await asyncio.gather(watch(), *(client(i) for i in range(args.clients)))
    return result


async def abort_cycles(args: argparse.Namespace, base: str, headers: dict[str, str]) -> int:
    """Open a long stream, read its first bytes, drop the connection; `cycles` times."""
    failures = 0
    gate = asyncio.Semaphore(args.viewers)
    body = v1_body(4000)  # far longer than a cycle: it is always cut mid-stream

    async def cycle() -> None:
        nonlocal failures
        # A session per cycle: closing it closes the socket, as a client that leaves.
        async with gate, aiohttp.ClientSession(headers=headers) as session:
            try:
                response = await session.post(f"{base}/v1/chat/completions", json=body)
                if response.status != 200:
                    failures += 1
                    print(f"  open failed: {response.status} {await response.text()}")
                await response.content.readany()
                response.close()
            except aiohttp.ClientError:
                failures += 1

    await asyncio.gather(*(cycle() for _ in range(args.cycles)))
    return failures


async def settle(
    session: aiohttp.ClientSession, base: str, pid: int, baseline: Snapshot
) -> Snapshot:
    """Wait (up to SETTLE_SECONDS) for tasks and descriptors to fall back to the baseline."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        now = await snapshot(session, base, pid)
        back = now.tasks <= baseline.tasks + TASK_SLACK and now.fds <= baseline.fds + FD_SLACK
        if back or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace, base: str, headers: dict[str, str], pid: int) -> bool:
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(400):
            try:
                async with session.get(f"{base}/health"):
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        idle = await snapshot(session, base, pid)
        print(f"idle              {idle}")
        print(
            f"soak: {args.clients} clients for {args.seconds:.0f} s, {args.tokens}-token "
            f"streams at {args.token_delay * 1000:.0f} ms a token, "
            f"{args.chat_share:.0%} /api/chat/stream"
        )
        started = time.perf_counter()
        result = await soak(args, base, headers, pid)
        elapsed = time.perf_counter() - started
        errors = sum(result.errors.values())
        print(
            f"  {result.streams} streams in {elapsed:.1f} s ({result.streams / elapsed:.0f}/s), "
            f"{result.tokens} tokens; stream time p50 {pct(result.durations, 0.5):.2f} s "
            f"p99 {pct(result.durations, 0.99):.2f} s; peak tasks {result.max_tasks}, "
            f"peak loop lag {result.max_lag * 1000:.0f} ms"
        )
        print(f"  errors: {errors} {result.errors or ''}")
        before = await settle(session, base, pid, idle)
        print(f"after soak        {before}")
        print(f"abort cycles: {args.cycles}, {args.viewers} at a time")
        started = time.perf_counter()
        failures = await abort_cycles(args, base, headers)
        print(f"  done in {time.perf_counter() - started:.1f} s, {failures} failed to open")
        after = await settle(session, base, pid, before)
        print(f"after aborts      {after}")
    leaked_tasks = after.tasks - before.tasks
    leaked_fds = after.fds - before.fds
    grown = after.rss_mb - before.rss_mb
    print(
        f"change across the abort cycles: tasks {leaked_tasks:+d}, fds {leaked_fds:+d}, "
        f"rss {grown:+.1f} MB"
    )
    return (
        errors == 0
        and failures == 0
        and leaked_tasks <= TASK_SLACK
        and leaked_fds <= FD_SLACK
        and grown <= RSS_SLACK_MB
    )


async def main(args: argparse.Namespace) -> int:
    settings = {
        "DEFAULT_MODEL": MODEL,
        "SCRIPTED_TOKEN_DELAY": str(args.token_delay),
        "DEFAULT_MAX_TOKENS": str(args.tokens),  # the length of a chat stream's reply
        "RATE_LIMIT_CHAT": "100000000/minute",
        "RATE_LIMIT_RUNS": "100000000/minute",
        "MAX_CONCURRENT_RUNS_PER_PRINCIPAL": "100000",
        "MAX_STREAMS_PER_PRINCIPAL": "100000",
        "DEV_MODE": "false",
    }
    async with served(settings, "soak") as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        ok = await run(args, server.base, headers, server.pid)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tokens", type=int, default=32, help="tokens per soak stream")
    parser.add_argument("--token-delay", type=float, default=0.05)
    parser.add_argument("--chat-share", type=float, default=0.1)
    parser.add_argument("--stream-timeout", type=float, default=120.0)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=200)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))

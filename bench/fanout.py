"""Fan-out: N viewers of one run's `/api/stream/{id}`, the run's model scripted.

Starts `symposia serve` (bench/served.py) and, in this process, opens `--viewers` raw
loopback sockets on one run before it starts (its first agent is a person, so the run
waits for their message), then sends that message and reads every stream to its `done`.
Prints the server's CPU per delivered event (its CPU during the run, less that of the
same run watched by one viewer, over events x viewers), the time from the first viewer's
receipt of an event to the last viewer's (p50/p99), the server's memory per idle viewer,
and the run's duration (message sent to the first `done` received) alone and watched.

    .venv/bin/python bench/fanout.py [--viewers 1000 4000] [--tokens 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.served import served

ID_LINE = re.compile(rb"(?m)^id: ?(\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Viewers:
    """Raw sockets reading one stream each: ids seen, first and last receipt per id."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.done: list[bool] = []
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.first_done = 0.0
        self.tasks: list[asyncio.Task[None]] = []
        self.counting = False

    async def open(self, port: int, path: str, key: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        index = len(self.seen)
        self.seen.append(0)
        self.done.append(False)
        self.tasks.append(asyncio.create_task(self.follow(reader, writer, index)))

    async def follow(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        rest = b""
        try:
            while chunk := await reader.read(1 << 16):
                now = time.monotonic()
                chunk = rest + chunk
                cut = chunk.rfind(b"\n") + 1
                chunk, rest = chunk[:cut], chunk[cut:]
                if self.counting:
                    for raw in ID_LINE.findall(chunk):
                        seq = int(raw)
                        self.first.setdefault(seq, now)
                        self.last[seq] = now
                        self.seen[index] += 1
                if b"event: done" in chunk:
                    self.done[index] = True
                    if not self.first_done:
                        self.first_done = now
                    return
        finally:
            writer.close()


async def one_run(
    base: str, pid: int, key: str, viewers_count: int, tokens: int
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"}
    port = int(base.rsplit(":", 1)[1])
    body: dict[str, Any] = {
        "topic": "fan-out",
        "bots": [
            {"name": "Host", "kind": "human"},
            {"name": "A", "model": "scripted/count", "max_tokens": tokens},
            {"name": "B", "model": "scripted/count", "max_tokens": tokens},
        ],
        "max_turns": 3,
    }
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{base}/api/run", json=body) as response:
            run_id = (await response.json())["id"]
        await asyncio.sleep(1)
        before = rss_kb(pid)
        viewers = Viewers()
        path = f"/api/stream/{run_id}"
        for start in range(0, viewers_count, 250):
            batch = range(start, min(viewers_count, start + 250))
            await asyncio.gather(*(viewers.open(port, path, key) for _ in batch))
        await asyncio.sleep(2)
        idle = rss_kb(pid)
        viewers.counting = True
        cpu0 = cpu_seconds(pid)
        sent = time.monotonic()
        async with http.post(f"{base}/api/run/{run_id}/messages", json={"content": "go"}) as r:
            if r.status != 201:
                raise RuntimeError(await r.text())
        await asyncio.wait_for(asyncio.gather(*viewers.tasks), 600)
        cpu = cpu_seconds(pid) - cpu0
    spreads = sorted(viewers.last[s] - viewers.first[s] for s in viewers.first)
    return {
        "cpu": cpu,
        "delivered": sum(viewers.seen),
        "events": len(viewers.first),
        "all_done": float(all(viewers.done)),
        "run_s": viewers.first_done - sent,
        "kb_per_idle_viewer": (idle - before) / viewers_count,
        "spread_p50_ms": statistics.median(spreads) * 1000,
        "spread_p99_ms": spreads[int(len(spreads) * 0.99)] * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    settings = {
        "DEFAULT_MODEL": "scripted/count",
        "SCRIPTED_TOKEN_DELAY": str(args.token_delay),
        "RATE_LIMIT_RUNS": "100000000/minute",
        "MAX_CONCURRENT_RUNS_PER_PRINCIPAL": "100000",
        "MAX_STREAMS_PER_PRINCIPAL": "100000",
        "MAX_CONNECTIONS": "15000",  # above the 10,000 viewers a 20,000-descriptor limit allows
        "DEV_MODE": "false",
    }
    async with served(settings, "fanout") as server:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{server.base}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        print(f"load average {os.getloadavg()[0]:.1f}")
        alone = await one_run(server.base, server.pid, server.key, 1, args.tokens)
        print(
            f"alone (1 viewer): run {alone['run_s']:.2f} s, {alone['events']:.0f} events, "
            f"server CPU {alone['cpu']:.2f} s"
        )
        for count in args.viewers:
            got = await one_run(server.base, server.pid, server.key, count, args.tokens)
            per_event = (got["cpu"] - alone["cpu"]) / got["delivered"] * 1e6
            print(
                f"{count} viewers: load {os.getloadavg()[0]:.1f}; "
                f"CPU per delivered event {per_event:.1f} us "
                f"(all CPU / delivered {got['cpu'] / got['delivered'] * 1e6:.1f} us); "
                f"first->last viewer p50 {got['spread_p50_ms']:.0f} ms, "
                f"p99 {got['spread_p99_ms']:.0f} ms; {got['kb_per_idle_viewer']:.1f} KB "
                f"per idle viewer; run {got['run_s']:.2f} s (alone {alone['run_s']:.2f} s); "
                f"delivered {got['delivered']:.0f} of {got['events'] * count:.0f}, "
                f"all done: {bool(got['all_done'])}"
            )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--tokens", type=int, default=100, help="tokens per agent's turn")
    parser.add_argument("--token-delay", type=float, default=0.02)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

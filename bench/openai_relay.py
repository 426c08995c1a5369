"""Benchmark of the OpenAI-compatible relay (prints figures; it is not a test).

Starts the fake OpenAI server (bench/fake_upstream.py) and Symposia pointed at it, each a
process of its own, then drives concurrent streaming clients (64-token answers) at
Symposia and, for comparison, straight at the fake server. Prints requests per second,
time to first token p50/p99, and Symposia's CPU microseconds per relayed token (from
/proc, so only Symposia's own process is counted).

    .venv/bin/python bench/openai_relay.py [--clients 1 10 50] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.live import free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    requests: int
    seconds: float
    ttft: list[float]
    tokens: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.ttft)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


async def one(
    session: aiohttp.ClientSession, url: str, model: str, headers: dict[str, str]
) -> tuple[float, int]:
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    started = time.perf_counter()
    first = 0.0
    text: list[str] = []
    async with session.post(url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for raw in response.content:  # one line at a time
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"data: {") and b'"content":"' in line:
                for choice in orjson.loads(line[6:])["choices"]:
                    content = choice["delta"].get("content")
                    if content:
                        if not first:
                            first = time.perf_counter() - started
                        text.append(content)
    # A relay may carry several upstream tokens in one chunk: count the tokens delivered.
    return first, "".join(text).count(" w")


async def load(
    url: str, model: str, clients: int, per_client: int, headers: dict[str, str]
) -> Result:
    # aiohttp rather than httpx as the load generator: its C parser leaves more of the
    # machine to the two things being compared.
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        ttft: list[float] = []
        tokens = 0

        async def worker() -> None:
            nonlocal tokens
            for _ in range(per_client):
                first, count = await one(session, url, model, headers)
                ttft.append(first)
                tokens += count

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return Result(clients * per_client, time.perf_counter() - started, ttft, tokens)


async def main(args: argparse.Namespace) -> None:
    fake = subprocess.Popen(  # it prints its port, then nothing
        [sys.executable, str(Path(__file__).with_name("fake_upstream.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    upstream = f"http://127.0.0.1:{fake.stdout.readline().strip()}/v1"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PORT": str(port),
            "DEV_MODE": "true",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": upstream,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(  # its output unread: a pipe could fill and block it
            [sys.executable, "-m", "symposia", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await measure(args, f"http://127.0.0.1:{port}", upstream, server.pid)
        finally:
            for process in (server, fake):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


async def measure(args: argparse.Namespace, base: str, upstream: str, pid: int) -> None:
    relay = f"{base}/v1/chat/completions"
    direct = f"{upstream}/chat/completions"
    async with aiohttp.ClientSession() as probe:
        for _ in range(400):
            try:
                async with probe.get(f"{base}/health"):
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    await load(relay, "openai/gpt-4o-mini", 4, 10, {})  # warm up: imports, pools
    auth = {"Authorization": "Bearer sk-bench"}
    print(
        f"{'clients':>7} {'path':<8} {'req/s':>8} {'ttft p50 ms':>12} "
        f"{'ttft p99 ms':>12} {'cpu us/token':>13}"
    )
    for clients in args.clients:
        per = max(args.requests // clients, 1)
        direct_result = await load(direct, "gpt-4o-mini", clients, per, auth)
        cpu_before = cpu_seconds(pid)
        relay_result = await load(relay, "openai/gpt-4o-mini", clients, per, {})
        cpu = cpu_seconds(pid) - cpu_before
        per_token = cpu / relay_result.tokens * 1e6
        for name, result, cpu_text in (
            ("direct", direct_result, "-"),
            ("symposia", relay_result, f"{per_token:.1f}"),
        ):
            print(
                f"{clients:>7} {name:<8} {result.rps:>8.1f} "
                f"{result.pct(0.5):>12.2f} {result.pct(0.99):>12.2f} "
                f"{cpu_text:>13}"
            )
        added = relay_result.pct(0.5) - direct_result.pct(0.5)
        mean_ttft = statistics.mean(relay_result.ttft) * 1000
        print(
            f"{'':>7} added ttft p50 {added:.2f} ms; relay/direct req/s "
            f"{relay_result.rps / direct_result.rps:.2f}; tokens relayed "
            f"{relay_result.tokens} (mean ttft {mean_ttft:.2f} ms)"
        )
    # Marginal CPU per token: the same requests with 512-token answers; the difference
    # over the extra tokens leaves out the per-request cost.
    before = cpu_seconds(pid)
    short = await load(relay, "openai/gpt-4o-mini", 10, 20, {})
    short_cpu = cpu_seconds(pid) - before
    before = cpu_seconds(pid)
    long = await load(relay, "openai/long", 10, 20, {})
    long_cpu = cpu_seconds(pid) - before
    marginal = (long_cpu - short_cpu) / (long.tokens - short.tokens) * 1e6
    per_request = (short_cpu - marginal / 1e6 * short.tokens) / short.requests * 1e3
    print(
        f"marginal cpu per relayed token {marginal:.1f} us; fixed cpu per request "
        f"{per_request:.2f} ms (10 clients, 64 vs 512-token answers)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--requests", type=int, default=400, help="requests per client count, shared out"
    )
    asyncio.run(main(parser.parse_args()))

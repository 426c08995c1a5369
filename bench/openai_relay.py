"""Benchmark of the OpenAI-compatible relay (prints figures; it is not a test).

Starts the fake OpenAI server (tests/fakes) in this process and Symposia as a separate
process pointed at it, then drives concurrent streaming clients (64-token answers) at
Symposia and, for comparison, straight at the fake server. Prints requests per second,
time to first token p50/p99, and Symposia's CPU microseconds per relayed token (from
/proc, so only Symposia's own process is counted).

    .venv/bin/python bench/openai_relay.py [--clients 1 10 50] [--requests 20]
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

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.live import free_port
from tests.fakes.provider_server import FakeProviderServer, Reply

TOKENS = [f" w{i}" for i in range(64)]
LONG_TOKENS = [f" w{i}" for i in range(512)]
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
    client: httpx.AsyncClient, url: str, model: str, headers: dict[str, str]
) -> tuple[float, int]:
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    started = time.perf_counter()
    first = 0.0
    text: list[str] = []
    async with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                if not first:
                    first = time.perf_counter() - started
                for choice in orjson.loads(line[6:])["choices"]:
                    text.append(choice["delta"]["content"])
    # A relay may carry several upstream tokens in one chunk: count the tokens delivered.
    return first, "".join(text).count(" w")


async def load(
    url: str, model: str, clients: int, per_client: int, headers: dict[str, str]
) -> Result:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        ttft: list[float] = []
        tokens = 0

        async def worker() -> None:
            nonlocal tokens
            for _ in range(per_client):
                first, count = await one(client, url, model, headers)
                ttft.append(first)
                tokens += count

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return Result(clients * per_client, time.perf_counter() - started, ttft, tokens)


async def main(args: argparse.Namespace) -> None:
    async with FakeProviderServer() as fake:
        fake.enqueue("openai")  # every request gets the default reply below
        fake.keep_alive = True  # as real providers do: both paths reuse their connections
        replies = {
            "gpt-4o-mini": Reply(tokens=TOKENS, prompt_tokens=5),
            "long": Reply(tokens=LONG_TOKENS, prompt_tokens=5),
        }
        # The answer's length follows the model asked for (see `marginal` below).
        fake.openai_models = ["gpt-4o-mini", "long"]
        original = fake._next_reply
        fake._next_reply = lambda route: (
            replies[  # type: ignore[method-assign]
                fake.requests[-1].body.get("model", "gpt-4o-mini").split("/")[-1]
            ]
            if route == "openai"
            else original(route)
        )
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "PORT": str(port),
                "DEV_MODE": "true",
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": fake.openai_base_url,
                "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                "LOG_LEVEL": "WARNING",
            }
            server = subprocess.Popen(
                [sys.executable, "-m", "symposia", "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                relay = f"http://127.0.0.1:{port}/v1/chat/completions"
                direct = f"{fake.openai_base_url}/chat/completions"
                async with httpx.AsyncClient() as probe:
                    for _ in range(200):
                        try:
                            await probe.get(f"http://127.0.0.1:{port}/health")
                            break
                        except httpx.TransportError:
                            await asyncio.sleep(0.05)
                await load(relay, "openai/gpt-4o-mini", 4, 5, {})  # warm up: imports, pools
                auth = {"Authorization": "Bearer sk-bench"}
                print(
                    f"{'clients':>7} {'path':<8} {'req/s':>8} {'ttft p50 ms':>12} "
                    f"{'ttft p99 ms':>12} {'cpu us/token':>13}"
                )
                for clients in args.clients:
                    per = max(args.requests, 1)
                    direct_result = await load(direct, "gpt-4o-mini", clients, per, auth)
                    cpu_before = cpu_seconds(server.pid)
                    relay_result = await load(relay, "openai/gpt-4o-mini", clients, per, {})
                    cpu = cpu_seconds(server.pid) - cpu_before
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
                # Marginal CPU per token: the same requests with 512-token answers; the
                # difference over the extra tokens leaves out the per-request cost.
                before = cpu_seconds(server.pid)
                short = await load(relay, "openai/gpt-4o-mini", 10, 10, {})
                short_cpu = cpu_seconds(server.pid) - before
                before = cpu_seconds(server.pid)
                long = await load(relay, "openai/long", 10, 10, {})
                long_cpu = cpu_seconds(server.pid) - before
                marginal = (long_cpu - short_cpu) / (long.tokens - short.tokens) * 1e6
                per_request = (short_cpu - marginal / 1e6 * short.tokens) / short.requests * 1e3
                print(
                    f"marginal cpu per relayed token {marginal:.1f} us; fixed cpu per request "
                    f"{per_request:.2f} ms (10 clients, 64 vs 512-token answers)"
                )
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    asyncio.run(main(parser.parse_args()))

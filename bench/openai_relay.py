"""Benchmark of the OpenAI-compatible relay (prints figures; it is not a test).

Starts the fake OpenAI server (bench/fake_upstream.py) and Symposia pointed at it, each a
process of its own, then drives concurrent streaming clients (64-token answers) at
Symposia and, for comparison, straight at the fake server. Prints requests per second,
time to first token p50/p99, and Symposia's CPU microseconds per relayed token (from
/proc, so only Symposia's own process is counted).

    .venv/bin/python bench/openai_relay.py [--clients 1 10 50] [--requests 400] [--rounds 3]
        [--tools]  (the answers are tool calls, their arguments in 64 or 512 pieces)
        [--responses [--no-store]]  (Symposia's side through /v1/responses)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.served import served

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
    if url.endswith("/responses"):
        return await one_response(session, url, model, headers)
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    started = time.perf_counter()
    first = 0.0
    text: list[str] = []
    async with session.post(url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for raw in response.content:  # one line at a time
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"data: {") and (b'"content":"' in line or b'"arguments":"' in line):
                for choice in orjson.loads(line[6:])["choices"]:
                    delta = choice["delta"]
                    content = delta.get("content") or "".join(
                        call["function"].get("arguments") or ""
                        for call in delta.get("tool_calls") or ()
                    )
                    if content:
                        if not first:
                            first = time.perf_counter() - started
                        text.append(content)
    # A relay may carry several upstream tokens in one chunk: count the tokens delivered
    # (text, or a tool call's argument pieces).
    return first, "".join(text).count(" w")


RESPONSES_STORE = True  # `--no-store`: what /v1/responses costs without its row


async def one_response(
    session: aiohttp.ClientSession, url: str, model: str, headers: dict[str, str]
) -> tuple[float, int]:
    """One streamed `/v1/responses` call: its text is in `response.output_text.delta`
    and `response.function_call_arguments.delta` events."""
    body = {"model": model, "input": "go", "stream": True, "store": RESPONSES_STORE}
    started = time.perf_counter()
    first = 0.0
    text: list[str] = []
    async with session.post(url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"data: ") and b'.delta"' in line:
                if not first:
                    first = time.perf_counter() - started
                text.append(orjson.loads(line[6:])["delta"])
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
    # Configured as a deployment is: an API key to check and a rate limit to count (set
    # high enough never to refuse), not DEV_MODE, which skips both.
    settings = {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": upstream,
        "RATE_LIMIT_CHAT": "1000000/minute",
    }
    try:
        async with served(settings, "bench") as server:
            await measure(args, server.base, upstream, server.pid, server.key)
            await sdk_floor(upstream)
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)


def median(values: list[float]) -> float:
    return statistics.median(values)


async def measure(args: argparse.Namespace, base: str, upstream: str, pid: int, key: str) -> None:
    relay = f"{base}/v1/responses" if args.responses else f"{base}/v1/chat/completions"
    direct = f"{upstream}/chat/completions"
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as probe:
        for _ in range(400):
            try:
                async with probe.get(f"{base}/health"):
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    short_model, long_model = ("tools", "long-tools") if args.tools else ("gpt-4o-mini", "long")
    await load(relay, f"openai/{short_model}", 4, 10, auth)  # warm up: imports, pools
    print(
        f"medians of {args.rounds} rounds, each {args.requests} requests per path, "
        f"direct and Symposia alternating ({'tool-call' if args.tools else 'text'} streams)"
    )
    print(
        f"{'clients':>7} {'path':<8} {'req/s':>8} {'ttft p50 ms':>12} "
        f"{'ttft p99 ms':>12} {'cpu us/token':>13}"
    )
    for clients in args.clients:
        per = max(args.requests // clients, 1)
        rounds: list[tuple[Result, Result, float]] = []
        for turn in range(args.rounds):
            # Alternate which path goes first, so neither always runs on a warmer machine.
            order = ("direct", "relay") if turn % 2 == 0 else ("relay", "direct")
            results: dict[str, Result] = {}
            cpu = 0.0
            for path in order:
                if path == "direct":
                    results[path] = await load(direct, short_model, clients, per, auth)
                else:
                    before = cpu_seconds(pid)
                    results[path] = await load(relay, f"openai/{short_model}", clients, per, auth)
                    cpu = cpu_seconds(pid) - before
            rounds.append((results["direct"], results["relay"], cpu / results["relay"].tokens))
        for name, index in (("direct", 0), ("symposia", 1)):
            per_token = median([r[2] for r in rounds]) * 1e6
            print(
                f"{clients:>7} {name:<8} {median([r[index].rps for r in rounds]):>8.1f} "
                f"{median([r[index].pct(0.5) for r in rounds]):>12.2f} "
                f"{median([r[index].pct(0.99) for r in rounds]):>12.2f} "
                f"{f'{per_token:.1f}' if index else '-':>13}"
            )
        added = [r[1].pct(0.5) - r[0].pct(0.5) for r in rounds]
        ratio = [r[1].rps / r[0].rps for r in rounds]
        print(
            f"{'':>7} added ttft p50 {median(added):.2f} ms "
            f"(rounds {min(added):.2f}-{max(added):.2f}); relay/direct req/s "
            f"{median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})"
        )
    # Marginal CPU per token: the same requests with 512-token answers; the difference
    # over the extra tokens leaves out the per-request cost.
    before = cpu_seconds(pid)
    short = await load(relay, f"openai/{short_model}", 10, 20, auth)
    short_cpu = cpu_seconds(pid) - before
    before = cpu_seconds(pid)
    long = await load(relay, f"openai/{long_model}", 10, 20, auth)
    long_cpu = cpu_seconds(pid) - before
    marginal = (long_cpu - short_cpu) / (long.tokens - short.tokens) * 1e6
    per_request = (short_cpu - marginal / 1e6 * short.tokens) / short.requests * 1e3
    print(
        f"marginal cpu per relayed token {marginal:.1f} us; fixed cpu per request "
        f"{per_request:.2f} ms (10 clients, 64 vs 512-token answers)"
    )


async def sdk_floor(upstream: str, calls: int = 500) -> None:
    """What the upstream call alone costs, in this process, one call at a time: through
    Symposia's OpenAI adapter (aiohttp directly, SSE parsed), through plain aiohttp (bytes
    only), and through the `openai` SDK's raw streaming `post` on its aiohttp transport
    (how Symposia called upstream before issue 13). Symposia cannot cost less than the
    first."""
    import httpx2
    import openai

    from symposia.providers.base import ChatMessage, CompletionRequest
    from symposia.providers.config import ProviderConfig
    from symposia.providers.openai_adapter import OpenAIAdapter

    request = CompletionRequest("gpt-4o-mini", [ChatMessage("user", "go")], max_tokens=64)
    adapter = OpenAIAdapter(ProviderConfig("openai", "sk-bench", "OPENAI_API_KEY", upstream))
    body = orjson.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "go"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    sdk = openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url=upstream,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(),
    )

    async def through_adapter() -> None:
        async for _ in adapter.stream(request):
            pass

    async def through_sdk() -> None:
        response = await sdk.post(
            "/chat/completions",
            cast_to=httpx2.Response,
            content=body,
            options={"security": {"bearer_auth": True}},
            stream=True,
            stream_cls=None,
        )
        async for _ in response.aiter_bytes():
            pass
        await response.aclose()

    async with aiohttp.ClientSession() as session:

        async def through_aiohttp() -> None:
            headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
            async with session.post(
                f"{upstream}/chat/completions", data=body, headers=headers
            ) as response:
                async for _ in response.content.iter_any():
                    pass

        figures = []
        for call in (through_adapter, through_aiohttp, through_sdk):
            for _ in range(50):
                await call()
            started = time.process_time()
            for _ in range(calls):
                await call()
            figures.append((time.process_time() - started) / calls * 1e3)
    await sdk.close()
    await adapter.close()
    print(
        "the upstream call alone, cpu per 64-token stream: Symposia's adapter "
        f"{figures[0]:.2f} ms, plain aiohttp {figures[1]:.2f} ms, openai SDK {figures[2]:.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--requests", type=int, default=400, help="requests per path and round, shared out"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client count")
    parser.add_argument(
        "--tools", action="store_true", help="tool-call streams instead of text streams"
    )
    parser.add_argument(
        "--responses",
        action="store_true",
        help="relay through /v1/responses (direct stays chat completions, its upstream call)",
    )
    parser.add_argument(
        "--no-store", action="store_true", help="with --responses: store false (no row)"
    )
    arguments = parser.parse_args()
    RESPONSES_STORE = not arguments.no_store
    asyncio.run(main(arguments))

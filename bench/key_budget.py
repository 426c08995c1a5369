"""What a key's budget and the usage ledger add to a `/v1` request (prints figures; it
is not a test).

Two servers side by side on the fake upstream (bench/fake_upstream.py), each its own
process on SQLite behind an API key and a rate limit: A runs the code before issue 25
(`--base`, a source tree, e.g. `git archive <commit> src | tar -x -C /tmp/base`), B this
tree with a budgeted key (every request reserves its worst case in the database, settles
it and writes its ledger row). Streaming clients (64-token answers) drive A and B in
alternating rounds; each round reports server CPU per request (from /proc) and time to
first token. The difference B - A is what the budget check and the ledger cost.

    .venv/bin/python bench/key_budget.py --base /tmp/base/src [--clients 50]
        [--requests 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.openai_relay import Result, cpu_seconds, load
from bench.served import served

HERE = Path(__file__).resolve().parents[1]


async def wait_healthy(base: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as probe:
        for _ in range(600):
            try:
                async with probe.get(f"{base}/health"):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


async def main(args: argparse.Namespace) -> None:
    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_upstream.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    upstream = f"http://127.0.0.1:{fake.stdout.readline().strip()}/v1"
    common = {
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": upstream,
        "RATE_LIMIT_CHAT": "1000000/minute",
        "MAX_STREAMS_PER_PRINCIPAL": "10000",
    }
    before = {**common, "PYTHONPATH": f"{args.base}{os.pathsep}{HERE}"}
    after = {**common, "PYTHONPATH": f"{HERE / 'src'}{os.pathsep}{HERE}"}
    budget = ("--budget", "1000000", "--period", "month")  # never refuses; always reserves
    try:
        async with (
            served(before, "bench") as a,
            served(after, "bench", budget) as b,
        ):
            await asyncio.gather(wait_healthy(a.base), wait_healthy(b.base))
            await measure(args, a, b)
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)


async def measure(args: argparse.Namespace, a: object, b: object) -> None:
    servers = {"A": a, "B": b}
    model = "openai/gpt-4o-mini"
    for server in servers.values():  # warm up: imports, pools, caches
        auth = {"Authorization": f"Bearer {server.key}"}  # type: ignore[attr-defined]
        await load(f"{server.base}/v1/chat/completions", model, 4, 10, auth)  # type: ignore[attr-defined]
    per = max(args.requests // args.clients, 1)
    figures: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    for turn in range(args.rounds):
        order = ("A", "B") if turn % 2 == 0 else ("B", "A")
        for name in order:
            server = servers[name]
            auth = {"Authorization": f"Bearer {server.key}"}  # type: ignore[attr-defined]
            pid = server.pid  # type: ignore[attr-defined]
            start = cpu_seconds(pid)
            result: Result = await load(
                f"{server.base}/v1/chat/completions",  # type: ignore[attr-defined]
                model,
                args.clients,
                per,
                auth,
            )
            cpu = (cpu_seconds(pid) - start) / result.requests * 1e6
            figures[name].append((cpu, result.pct(0.5)))
            print(
                f"round {turn + 1} {name}: {result.requests} requests, {result.rps:.1f} req/s, "
                f"cpu {cpu:.0f} us/request, ttft p50 {result.pct(0.5):.2f} ms"
            )
    cpu_a = statistics.median(c for c, _ in figures["A"])
    cpu_b = statistics.median(c for c, _ in figures["B"])
    ttft_a = statistics.median(t for _, t in figures["A"])
    ttft_b = statistics.median(t for _, t in figures["B"])
    print(
        f"{args.clients} clients, medians of {args.rounds} rounds: cpu per request A "
        f"{cpu_a:.0f} us, B {cpu_b:.0f} us, added {cpu_b - cpu_a:+.0f} us; ttft p50 A "
        f"{ttft_a:.2f} ms, B {ttft_b:.2f} ms, added {ttft_b - ttft_a:+.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the source tree before issue 25")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))

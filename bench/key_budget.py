"""What a key's budget and the usage ledger add to a `/v1` request (prints figures; it
is not a test).

Two servers side by side on the fake upstream (bench/fake_upstream.py), each its own
process on SQLite behind an API key and a rate limit: A runs the code before issue 25
(`--base`, a source tree, e.g. `git archive <commit> src | tar -x -C /tmp/base`), B this
tree with a budgeted key (every request reserves its worst case in the database, settles
it and writes its ledger row). Streaming clients (64-token answers) drive A and B in
alternating rounds; each round reports server CPU per request (from /proc) and time to
first token. The difference B - A is what the budget check and the ledger cost.
`--base-budgeted` adds M: the base tree with the budgeted key too (the base's own budget
check, next to this tree's), and `--self-plain` adds C: this tree with a key without a
budget (what the budget alone adds here is B - C), in the same alternating rounds.

    .venv/bin/python bench/key_budget.py --base /tmp/base/src [--clients 50]
        [--requests 500] [--rounds 3] [--base-budgeted] [--self-plain]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        async with contextlib.AsyncExitStack() as stack:
            servers = {
                "A": await stack.enter_async_context(served(before, "bench")),
                "B": await stack.enter_async_context(served(after, "bench", budget)),
            }
            if args.base_budgeted:
                servers["M"] = await stack.enter_async_context(served(before, "bench", budget))
            if args.self_plain:
                servers["C"] = await stack.enter_async_context(served(after, "bench"))
            await asyncio.gather(*(wait_healthy(s.base) for s in servers.values()))
            await measure(args, servers)
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)


async def measure(args: argparse.Namespace, servers: dict[str, Any]) -> None:
    model = "openai/gpt-4o-mini"
    for server in servers.values():  # warm up: imports, pools, caches
        auth = {"Authorization": f"Bearer {server.key}"}
        await load(f"{server.base}/v1/chat/completions", model, 4, 10, auth)
    per = max(args.requests // args.clients, 1)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    for turn in range(args.rounds):
        order = list(servers) if turn % 2 == 0 else list(reversed(servers))
        for name in order:
            server = servers[name]
            auth = {"Authorization": f"Bearer {server.key}"}
            pid = server.pid
            start = cpu_seconds(pid)
            result: Result = await load(
                f"{server.base}/v1/chat/completions",
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
    ttft_a = statistics.median(t for _, t in figures["A"])
    print(f"{args.clients} clients, medians of {args.rounds} rounds:")
    for name, found in figures.items():
        cpu = statistics.median(c for c, _ in found)
        ttft = statistics.median(t for _, t in found)
        print(
            f"  {name}: cpu per request {cpu:.0f} us (added {cpu - cpu_a:+.0f} us), "
            f"ttft p50 {ttft:.2f} ms (added {ttft - ttft_a:+.2f} ms)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the source tree before issue 25")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--base-budgeted", action="store_true", help="also the base tree with the budget"
    )
    parser.add_argument(
        "--self-plain", action="store_true", help="also this tree without the budget"
    )
    asyncio.run(main(parser.parse_args()))

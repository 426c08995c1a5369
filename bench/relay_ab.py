"""Two source trees of Symposia served at once, compared on the /v1 relay (not a test).

Starts the benchmarks' fake OpenAI server, then `symposia serve` from tree A and from tree
B (each `PYTHONPATH=<tree>/src`, its own SQLite file and API key, a rate limit counted,
logs at WARNING), and drives each with the independent stdlib load generator
(`LOAD`, default `../shared/bench/load.py` beside the repository) in alternating rounds:
direct, A, B, then B, A, direct, ... Prints medians: requests per second over direct's,
added TTFT p50 over direct's, and server CPU per token; also each server's start-up to
ready (to the first 200 on /health) and its idle RSS. On a shared machine, A and B side by
side in the same minute are the only figures that compare.

    .venv/bin/python bench/relay_ab.py A_TREE B_TREE [--rounds 5] [--load PATH]
        [--one 300] [--fifty 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.live import free_port

SETTINGS = {"OPENAI_API_KEY": "sk-bench", "RATE_LIMIT_CHAT": "1000000/minute"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Served:
    """`symposia serve` of one tree, with its start-up time and idle RSS."""

    def __init__(self, tree: Path, upstream: str, tmp: str, name: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **SETTINGS,
            "PYTHONPATH": str(tree / "src"),
            "OPENAI_BASE_URL": upstream,
            "PORT": str(self.port),
            "DATABASE_URL": f"sqlite:///{tmp}/{name}.db",
            "LOG_LEVEL": "WARNING",
        }
        created = subprocess.run(
            [sys.executable, "-m", "symposia", "keys", "create", "--name", name],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.key = created.stdout.strip().splitlines()[-1]
        self.process: subprocess.Popen[bytes] | None = None
        self.startups: list[float] = []
        self.rss: list[float] = []

    def start(self) -> None:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "symposia", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.01)
        self.startups.append(time.perf_counter() - started)
        time.sleep(2)
        self.rss.append(rss_mb(self.process.pid))

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
            self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def load(
    script: Path, url: str, conc: int, total: int, pid: int | None, key: str
) -> dict[str, Any]:
    args = [sys.executable, str(script), url, str(conc), str(total), "--key", key]
    args += ["--model", "openai/gpt-4o-mini" if pid else "gpt-4o-mini"]
    if pid:
        args += ["--pids", str(pid)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--one", type=int, default=300, help="requests at 1 client per round")
    parser.add_argument("--fifty", type=int, default=1000, help="requests at 50 clients")
    parser.add_argument("--starts", type=int, default=3, help="start-ups measured per tree")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50])
    default_load = Path(__file__).resolve().parents[1].parent.parent / "shared/bench/load.py"
    parser.add_argument("--load", type=Path, default=Path(os.environ.get("LOAD", default_load)))
    args = parser.parse_args()
    fake = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_upstream.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    upstream = f"http://127.0.0.1:{fake.stdout.readline().strip()}/v1"
    servers: dict[str, Served] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            servers = {
                name: Served(tree.resolve(), upstream, tmp, name)
                for name, tree in (("A", args.a), ("B", args.b))
            }
            for _ in range(args.starts):  # start-up and idle RSS, alternating
                for server in servers.values():
                    server.start()
                    server.stop()
            for server in servers.values():
                server.start()
                load(args.load, f"{server.url}/v1/chat/completions", 10, 200, None, server.key)
            print(f"load average {os.getloadavg()}", flush=True)
            results: dict[tuple[str, int], list[dict[str, Any]]] = {}
            paths = ["direct", "A", "B"]
            for turn in range(args.rounds):
                order = paths if turn % 2 == 0 else paths[::-1]
                for conc in args.clients:
                    total = args.one if conc == 1 else args.fifty
                    for path in order:
                        if path == "direct":
                            url, pid = f"{upstream}/chat/completions", None
                            key = "sk-bench"
                        else:
                            server = servers[path]
                            url, pid = f"{server.url}/v1/chat/completions", server.pid
                            key = server.key
                        results.setdefault((path, conc), []).append(
                            load(args.load, url, conc, total, pid, key)
                        )
            print(f"load average {os.getloadavg()}")
            report(results, servers, args.rounds, args.clients)
    finally:
        for server in servers.values():
            server.stop()
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)


def report(
    results: dict[tuple[str, int], list[dict[str, Any]]],
    servers: dict[str, Served],
    rounds: int,
    clients: list[int],
) -> None:
    med = statistics.median
    for name, server in servers.items():
        print(
            f"{name}: start-up to ready {med(server.startups):.2f} s "
            f"({', '.join(f'{s:.2f}' for s in server.startups)}), idle RSS {med(server.rss):.1f} MB"
        )
    for conc in clients:
        direct = results["direct", conc]
        for name in servers:
            mine = results[name, conc]
            ratio = [m["rps"] / d["rps"] for m, d in zip(mine, direct, strict=True)]
            added = [m["ttft_p50_ms"] - d["ttft_p50_ms"] for m, d in zip(mine, direct, strict=True)]
            cpu = [m["server_cpu_us_per_token"] for m in mine]
            print(
                f"{conc:>2} clients {name}: relay/direct {med(ratio):.2f} "
                f"({min(ratio):.2f}-{max(ratio):.2f}), added ttft p50 {med(added):.2f} ms "
                f"({min(added):.2f}-{max(added):.2f}), cpu/token {med(cpu):.1f} us "
                f"({min(cpu):.1f}-{max(cpu):.1f}), errors {sum(m['errors'] for m in mine)}"
            )
        paired = [
            b["server_cpu_us_per_token"] / a["server_cpu_us_per_token"]
            for a, b in zip(results["A", conc], results["B", conc], strict=True)
        ]
        print(
            f"{conc:>2} clients B/A cpu per token, paired by round: {med(paired):.2f} "
            f"({min(paired):.2f}-{max(paired):.2f})"
        )
        print(
            f"{conc:>2} clients direct: {med([d['rps'] for d in direct]):.0f} req/s, "
            f"ttft p50 {med([d['ttft_p50_ms'] for d in direct]):.2f} ms ({rounds} rounds)"
        )


if __name__ == "__main__":
    main()

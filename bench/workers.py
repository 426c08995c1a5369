"""The local debate through two workers (prints figures; it is not a test).

1. refused: `symposia serve --workers 2` with the embedded defaults (SQLite, the in-memory
   event log) must stop at once with a message naming what to set; prints it. Left out,
   saying so, while `serve` has no `--workers` option.
2. two processes: two `symposia serve` on one PostgreSQL database (a throwaway one) and
   Redis (the Redis Streams event log). The default debate (the two default bots on
   `local/smollm2`, real llama-cpp, `--turns` turns) is created on worker 1 and watched on
   worker 2, and on worker 1 too for comparison. Prints tokens, time to first token (from
   the create call's answer to the first token on worker 2), total time, tokens per second,
   and whether the ids are gap-free and the same for both viewers.
   First, for comparison, the same debate in one process (SQLite, in-memory log).
3. with `--workers`: the same debate through `symposia serve --workers 2` on one port
   (which worker answers which connection is the kernel's choice).

    .venv/bin/python bench/workers.py [--turns 2] [--topic "..."] [--no-baseline]

Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379, as the tests do, and the
local model (`make install`). Exit status 1 if a check failed. 10,000 viewers and Redis
append figures are bench/event_log.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.databases import PostgresDatabases, pg_url
from tests.fakes.workers import REDIS_URL, Cluster, Viewer, Worker, gap_free

REFUSE_WAIT_SECONDS = 30.0
DEBATE_SECONDS = 600.0  # two turns of up to 256 tokens each, on a busy 2-core machine
ISOLATED = ("DATABASE_URL", "REDIS_URL", "EVENT_LOG", "DEFAULT_MODEL", "BASIC_AUTH_USER")


def base_env() -> dict[str, str]:
    """This environment without what would choose the database, log or model for us."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env.update({"DEV_MODE": "true", "LOG_LEVEL": "WARNING"})
    return env


def has_workers_option() -> bool:
    shown = subprocess.run(
        [sys.executable, "-m", "symposia.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "--workers" in shown.stdout


def refused(directory: Path) -> bool:
    """`serve --workers 2` on SQLite and the in-memory log: it must exit, non-zero, saying
    what to set; a server that starts instead is stopped and reported."""
    env = {**base_env(), "DATABASE_URL": f"sqlite:///{directory}/refused.db"}
    command = [sys.executable, "-m", "symposia.cli", "serve", "--workers", "2", "--port", "0"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers too are stopped if it was not refused
    )
    try:
        _, stderr = process.communicate(timeout=REFUSE_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        print(f"refused  NO: still serving after {REFUSE_WAIT_SECONDS:.0f}s (stopped)")
        return False
    elapsed = time.perf_counter() - started
    message = stderr.strip().splitlines()[-1] if stderr.strip() else "(no message)"
    print(f"refused  exit {process.returncode} in {elapsed:.1f}s: {message}")
    return process.returncode != 0 and "REDIS_URL" in stderr


async def debate(
    label: str, cluster: Cluster, create_on: Worker, watch_on: Worker, turns: int, topic: str
) -> bool:
    """One default debate: created on `create_on`, watched there and on `watch_on`."""
    async with httpx.AsyncClient(timeout=60) as client:
        asked = time.monotonic()  # the clock of the viewers' receipts
        response = await client.post(
            f"{create_on.base_url}/api/run", json={"topic": topic, "max_turns": turns}
        )
        response.raise_for_status()
        created = time.monotonic()
        run_id = response.json()["id"]
        remote = Viewer(cluster, run_id, watch_on)
        local = Viewer(cluster, run_id, create_on)
        events = await remote.wait_done(timeout=DEBATE_SECONDS)
        await local.wait_done(timeout=60)
        summary = (await client.get(f"{watch_on.base_url}/api/run/{run_id}")).json()
    tokens = [e for e in events if e.event == "token"]
    ends = [e.data for e in events if e.event == "turn_complete"]
    completion = sum(end["usage"]["completion_tokens"] for end in ends)
    generating = sum((end["usage"]["total_ms"] or 0) for end in ends) / 1000
    same = [e.key for e in local.events] == [e.key for e in events]
    ok = gap_free(events) and same and summary["status"] == "completed"
    print(
        f"{label:10} status {summary['status']}, {len(ends)} turns, {len(tokens)} token "
        f"events ({completion} model tokens), create call {(created - asked) * 1000:.0f} ms"
    )
    if tokens:
        first = (tokens[0].at - created) * 1000
        print(
            f"{'':10} first token on {watch_on.name} {first:.0f} ms after the create call "
            f"answered; total {events[-1].at - created:.2f} s; "
            f"{completion / generating if generating else 0:.1f} model tokens/s while generating"
        )
    for end in ends:
        usage = end["usage"]
        print(
            f"{'':10} turn {end['turn']} {end['name']:9} {usage['completion_tokens']:4d} tokens, "
            f"first token {usage['time_to_first_token_ms'] or 0:6.0f} ms, "
            f"turn {usage['total_ms'] or 0:6.0f} ms"
        )
    print(
        f"{'':10} ids 1..{events[-1].id} gap-free: {gap_free(events)}; same on both workers: {same}"
    )
    return ok


async def one_process(directory: Path, turns: int, topic: str) -> bool:
    """For comparison: the embedded default, one process on SQLite and the in-memory log."""
    env = {**base_env(), "DATABASE_URL": f"sqlite:///{directory}/baseline.db"}
    cluster = Cluster({**env, "LOCAL_PRELOAD": "true"}, directory)
    alone = cluster.add()
    try:
        await cluster.start()
        return await debate("baseline", cluster, alone, alone, turns, topic)
    finally:
        await cluster.close()


async def two_processes(database: str, directory: Path, turns: int, topic: str) -> bool:
    env = {**base_env(), "DATABASE_URL": pg_url(database), "REDIS_URL": REDIS_URL}
    cluster = Cluster({**env, "LOCAL_PRELOAD": "true"}, directory)
    one, two = cluster.add(), cluster.add()
    try:
        await cluster.start()
        return await debate("processes", cluster, one, two, turns, topic)
    finally:
        await cluster.close()


async def workers_option(database: str, directory: Path, turns: int, topic: str) -> bool:
    env = {**base_env(), "DATABASE_URL": pg_url(database), "REDIS_URL": REDIS_URL}
    cluster = Cluster({**env, "LOCAL_PRELOAD": "true"}, directory)
    served = cluster.add(None, "--workers", "2")
    try:
        await cluster.start()
        return await debate("--workers", cluster, served, served, turns, topic)
    finally:
        await cluster.close()


async def main(args: argparse.Namespace) -> int:
    print(f"cpus: {os.cpu_count()}")
    checks: list[bool] = []
    databases = PostgresDatabases()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        flag = has_workers_option()
        if flag:
            checks.append(refused(directory))
        else:
            print("refused  left out: `symposia serve` has no --workers option yet")
        try:
            database = databases.create()
        except pytest.skip.Exception as exc:
            print(f"debate   left out: {exc}")
            return 1
        try:
            if args.baseline:
                checks.append(await one_process(directory, args.turns, args.topic))
            checks.append(await two_processes(database, directory, args.turns, args.topic))
            if flag:
                checks.append(await workers_option(database, directory, args.turns, args.topic))
        finally:
            databases.drop_all()
    return 0 if all(checks) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--topic", default="Should cities ban cars from their centres?")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the same debate in one process on SQLite and the in-memory log",
    )
    sys.exit(asyncio.run(main(parser.parse_args())))

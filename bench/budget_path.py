"""What a key's budget adds to one call, measured alone (prints figures; not a test).

End-to-end CPU per request (`bench/key_budget.py`) moves by a few hundred microseconds
between rounds on 2 shared cores, more than the < 50 us this part is meant to cost. This
isolates it: 50 concurrent "calls" in one process, each taking its worst case from the
key's budget slice (`BudgetBook.take`) and settling its actual cost (`BudgetBook.settle`,
plus the settlement queued with the ledger's group commit), against the same loop with
only the ledger row every call writes anyway. The process's CPU time (all threads: the
database driver's thread included) over the run, flushes included, divided by the calls.

    .venv/bin/python bench/budget_path.py [--calls 20000] [--rounds 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from symposia.governance.budgets import BudgetStore, Settlement
from symposia.governance.key_store import KeyLimitStore
from symposia.governance.ledger import UsageEntry, UsageLedger
from symposia.governance.slices import BudgetBook
from symposia.governance.usage_rows import row_of
from symposia.storage.db import create_engine, session_factory
from symposia.storage.migrate import upgrade

CLIENTS = 50
WORST = 20_000  # nano-dollars: a call's worst case
ACTUAL = 7_000


def _row(key_id: str) -> dict[str, object]:
    return row_of(
        at=datetime.now(UTC),
        principal=f"key:{key_id}",
        key_id=key_id,
        model="openai/gpt-4o-mini",
        provider_model="gpt-4o-mini",
        surface="v1",
        run_id=None,
        conversation_id=None,
        response_id=None,
        prompt_tokens=12,
        completion_tokens=64,
        estimated=False,
        cost_nanos=ACTUAL,
        latency_ms=3.0,
        ttft_ms=1.0,
        status="ok",
    )


async def _calls(ledger: UsageLedger, book: BudgetBook | None, key_id: str, n: int) -> None:
    async def client(count: int) -> None:
        for _ in range(count):
            settlement = None
            if book is not None:
                slice_id = await book.take(key_id, WORST, None, datetime.now(UTC))
                assert isinstance(slice_id, str), slice_id
                await asyncio.sleep(0)  # the call's answer streams meanwhile
                returned = book.settle(key_id, slice_id, WORST, ACTUAL)
                settlement = Settlement(key_id, slice_id, ACTUAL, None, datetime.now(UTC), returned)
            else:
                await asyncio.sleep(0)
            ledger.add(UsageEntry(_row(key_id), settlement))

    await asyncio.gather(*(client(n // CLIENTS) for _ in range(CLIENTS)))
    await ledger.flush()


async def main(args: argparse.Namespace) -> None:
    folder = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite+aiosqlite:///{folder.name}/budget.db"
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    keys = KeyLimitStore(sessions)
    store = BudgetStore(sessions, "bench", 30.0)
    ledger = UsageLedger(sessions, store)
    book = BudgetBook(ledger)
    await keys.set("bench-budget", {"max_budget_nanos": 10**15})
    figures: dict[str, list[float]] = {"plain": [], "budget": []}
    for _ in range(args.rounds):
        for kind in ("plain", "budget"):
            started = time.process_time()
            await _calls(ledger, book if kind == "budget" else None, "bench-budget", args.calls)
            figures[kind].append((time.process_time() - started) / args.calls * 1e6)
    book.give_back_idle()
    await ledger.flush()
    await engine.dispose()
    folder.cleanup()
    plain, budget = (statistics.median(figures[k]) for k in ("plain", "budget"))
    paired = [b - p for p, b in zip(figures["plain"], figures["budget"], strict=True)]
    print(f"{CLIENTS} concurrent calls, {args.calls} per round, {args.rounds} rounds")
    print(f"  ledger row only: {plain:.1f} us CPU per call (median)")
    print(f"  with the budget: {budget:.1f} us CPU per call (median)")
    print(
        f"  added by the budget: {statistics.median(paired):.1f} us per call "
        f"(paired by round: {', '.join(f'{d:.1f}' for d in paired)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    asyncio.run(main(parser.parse_args()))

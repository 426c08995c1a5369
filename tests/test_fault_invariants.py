"""The fault suite's invariants (tests/fakes/fault_harness.py) on made-up streams and
transcripts: each one fails on the break it names, so a cell that passes means something."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.fault_harness import (
    POLICIES,
    SECRETS,
    Call,
    Seen,
    Upstream,
    covered_once,
    no_secret_printed,
    one_event_per_id,
    turns_generated_once,
)
from tests.fakes.provider_server import FakeProviderServer

START = Seen(2, "turn_start", {"turn": 0, "bot": 0})
TOKENS = [Seen(n, "token", {"turn": 0, "bot": 0, "delta": f" w{n}"}) for n in (3, 4, 5)]
COMPLETE = Seen(6, "turn_complete", {"turn": 0, "bot": 0})
RUNNING = Seen(1, "run_status", {"status": "running"})
LIVE = [RUNNING, START, *TOKENS, COMPLETE]


def _snapshot(first: int, last: int) -> Seen:
    return Seen(last, "snapshot", {"first_id": first, "messages": []})


def test_ids_covered_once_accepts_a_snapshot_for_tokens_and_refuses_overlaps_and_gaps() -> None:
    covered_once(LIVE, "live")
    covered_once([RUNNING, START, _snapshot(3, 5), COMPLETE], "rebuilt")
    with pytest.raises(AssertionError, match="covered exactly once"):
        covered_once([RUNNING, START, _snapshot(2, 5), COMPLETE], "overlap")
    with pytest.raises(AssertionError, match="never came"):
        covered_once([RUNNING, START, COMPLETE], "gap")
    # A viewer resuming after 4 may get again the snapshot standing for 3..5.
    covered_once([RUNNING, START, *TOKENS[:2], _snapshot(3, 5), COMPLETE], "v", reconnected=True)


def test_one_event_per_id_refuses_two_meanings_and_a_snapshot_over_an_event() -> None:
    rebuilt = [RUNNING, START, _snapshot(3, 5), COMPLETE]
    one_event_per_id({"live": LIVE, "rebuilt": rebuilt})
    other = [RUNNING, Seen(2, "turn_start", {"turn": 1, "bot": 1}), *TOKENS, COMPLETE]
    with pytest.raises(AssertionError, match="id 2 means different events"):
        one_event_per_id({"live": LIVE, "other": other})
    with pytest.raises(AssertionError, match="stands for id 2"):
        one_event_per_id({"live": LIVE, "rebuilt": [RUNNING, _snapshot(2, 5), COMPLETE]})


def _message(turn: int, bot: int, content: str, round_: int | None = None) -> dict[str, Any]:
    return {
        "bot_index": bot,
        "role": "assistant",
        "turn": turn,
        "round": round_,
        "content": content,
        "status": "complete",
    }


def _upstream(*calls: tuple[str, str]) -> Upstream:
    upstream = Upstream(FakeProviderServer())
    upstream.calls = [Call(n, model, ctx) for n, (model, ctx) in enumerate(calls, 1)]
    return upstream


def test_turns_generated_once_refuses_a_repeat_a_double_and_a_lost_call() -> None:
    policy = POLICIES["round_robin"]
    kept = {"messages": [_message(0, 0, "c1 w1"), _message(1, 1, "c2 w1")]}
    turns_generated_once(policy, _upstream(("agent-a", "x"), ("agent-b", "y")), kept)
    with pytest.raises(AssertionError, match="requests sent twice"):
        turns_generated_once(policy, _upstream(("agent-a", "x"), ("agent-a", "x")), kept)
    doubled = {"messages": [_message(0, 0, "c1 w1"), _message(0, 1, "c2 w1")]}
    with pytest.raises(AssertionError, match="turns stored twice"):
        turns_generated_once(policy, _upstream(("agent-a", "x"), ("agent-b", "y")), doubled)
    three = _upstream(("agent-a", "x"), ("agent-b", "y"), ("agent-b", "z"))
    with pytest.raises(AssertionError, match="kept nowhere"):
        turns_generated_once(policy, three, kept)
    rounds = POLICIES["rounds_vote"]
    again = {"messages": [_message(0, 0, "c1", 0), _message(3, 0, "c4", 0)]}
    with pytest.raises(AssertionError, match="turns stored twice"):
        turns_generated_once(rounds, _upstream(("agent-a", "x"), ("agent-a", "w")), again)


def test_no_secret_printed_finds_each_canary() -> None:
    no_secret_printed("a clean log line")
    for secret in SECRETS:
        with pytest.raises(AssertionError, match="secrets printed"):
            no_secret_printed(f"settings: got {{'key': '{secret}'}}")

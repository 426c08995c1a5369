"""Issue 21, points 4 and 5: replay is defined by coverage, not ranges.

A stream rebuilt from storage keeps every stored event at its id with its data; each id it
cannot rebuild is covered by exactly one `snapshot` that names it (`ranges`), never an id
another event holds. Resuming after any id, on any log (memory, Redis, the stored rebuild,
a log restored with gaps and appended to), gives exactly the events that follow.

The property test generates run histories the way runs write them: rounds of parallel
turns whose tokens interleave and which finish on consecutive ids, people's messages, bot
edits, selector choices, verdicts (stored with the id of their event, or not), turns that
left nothing in storage, `interrupted`/`resumed` pairs (never stored), errors.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symposia.events.redis as redis_log
from symposia.domain.event_read import payload_of, ranges_of
from symposia.domain.event_types import (
    HANDOVER,
    BotTurn,
    BotUpdated,
    Interrupted,
    Payload,
    PersonSaid,
    Resumed,
    RunDone,
    RunStatusChanged,
    SpeakerSelected,
    StreamError,
    Token,
    TurnComplete,
    TurnStart,
    Verdict,
    event,
)
from symposia.domain.events import Event
from symposia.domain.models import BotConfig, BotEdit, Message, Run, RunStatus, utcnow
from symposia.events.log import ResumeGoneError
from symposia.events.memory import InMemoryEventLog
from symposia.events.redis import RedisEventLog
from symposia.events.replay import StoredStream, rebuild, resumable
from symposia.providers.scripted import Script, ScriptedProvider
from tests.fakes.redis_server import REDIS_URL, require_redis
from tests.sse import Frame, collect
from tests.test_event_ids import serving
from tests.test_event_log_contract import _delete_prefix

NAMES = ("A", "B", "C")
FAILURE = {"code": "upstream_error", "message": "boom"}
# Events a Redis tail keeps: few (resumes read ranges from Redis, then join the tail), or
# the default (this process's tail holds the whole restored stream, gaps and all).
TAIL_SIZES = (8, redis_log.TAIL_KEPT_EVENTS)


@dataclass
class History:
    """A run's live stream and the run as storage keeps it."""

    run: Run
    live: list[Event] = field(default_factory=list)
    stored: set[int] = field(default_factory=set)  # the ids storage can place
    texts: dict[int, Message] = field(default_factory=dict)  # token id -> its saved turn

    def emit(self, payload: Payload, stored: bool = False) -> int:
        seq = len(self.live) + 1
        self.live.append(event(seq, payload))
        if stored:
            self.stored.add(seq)
        return seq


def _new_run() -> Run:
    bots = [BotConfig(name, "scripted/x", "") for name in NAMES]
    return Run(topic="t", bots=bots, max_turns=99, strategy="rounds")


def _round(draw: st.DrawFn, history: History, number: int) -> None:
    """The agents of a round speak at once: each turn's start, tokens and end keep their
    order, the turns interleave however the draw says (ends on consecutive ids too)."""
    run = history.run
    agents = draw(st.integers(1, 3))
    pending: dict[int, list[str]] = {}
    turns: dict[int, tuple[BotTurn, Message, bool]] = {}
    for agent in range(agents):
        tokens = draw(st.integers(0, 4))
        pending[agent] = ["start", *["token"] * tokens, "end"]
        speaker = BotTurn(run.turn_count + agent, agent, NAMES[agent], number)
        message = Message(
            role="assistant",
            author=NAMES[agent],
            content="",
            model="scripted/x",
            bot_index=agent,
            turn=speaker.turn,
            round=number,
        )
        saved = draw(st.integers(0, 9)) > 0  # now and then a turn storage never got
        turns[agent] = (speaker, message, saved)
    tokens_of: dict[int, list[int]] = {agent: [] for agent in turns}
    while pending:
        agent = draw(st.sampled_from(sorted(pending)))
        step = pending[agent].pop(0)
        if not pending[agent]:
            del pending[agent]
        speaker, message, saved = turns[agent]
        if step == "start":
            message.start_event = history.emit(TurnStart(speaker, message.model), saved)
        elif step == "token":
            delta = f"t{speaker.turn}.{len(tokens_of[agent])} "
            message.content += delta
            tokens_of[agent].append(history.emit(Token(speaker.token_fields(), delta)))
        else:
            message.complete_event = len(history.live) + 1
            history.emit(TurnComplete(speaker, message), saved)
    for agent, (_, message, saved) in sorted(turns.items(), key=lambda t: t[1][0].turn):
        if saved:
            run.messages.append(message)
            history.texts.update(dict.fromkeys(tokens_of[agent], message))
        else:  # the turn number is used all the same
            run.messages.append(Message(role="assistant", author="", content="", bot_index=agent))


def _between(draw: st.DrawFn, history: History) -> None:
    """What happens between rounds: people speak, bots are edited, a supervisor chooses,
    a process hands the run over (never stored)."""
    run = history.run
    kinds = ("person", "edit", "choice", "choice_unrecorded", "takeover")
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=3)):
        turn = run.turn_count
        if kind == "person":
            said = Message(role="user", author="Pat", content=f"hi {turn}", turn=turn)
            said.start_event = said.complete_event = history.emit(PersonSaid(said), True)
            run.messages.append(said)
        elif kind == "edit":
            changes = {"temperature": 0.5}
            seq = history.emit(BotUpdated(0, "A", changes, turn), True)
            edit = BotEdit(len(run.edits) + 1, 0, changes, utcnow(), event=seq, turn=turn)
            run.edits.append(edit)
        elif kind.startswith("choice"):
            chosen = SpeakerSelected(1, "B", "B", 1, False)
            recorded = kind == "choice"
            seq = history.emit(chosen, recorded)
            choice = {"turn": turn, **chosen.data()}
            if recorded:
                choice["event_id"] = seq
            run.policy_state.setdefault("choices", []).append(choice)
        else:
            history.emit(Interrupted("the process generating the run stopped", turn))
            history.emit(Resumed(turn, 1))


def _ending(draw: st.DrawFn, history: History) -> None:
    run = history.run
    ending = draw(st.sampled_from(["verdict", "verdict_unrecorded", "error", "plain"]))
    if ending.startswith("verdict"):
        verdict = Verdict("vote", "42", {"42": 2}, "")
        seq = history.emit(verdict, ending == "verdict")
        run.policy_state["verdict"] = {**verdict.data()}
        if ending == "verdict":
            run.policy_state["verdict"]["event_id"] = seq
    if ending == "error":
        run.status, run.error, run.error_message = RunStatus.ERROR, FAILURE, "boom"
        history.emit(StreamError(FAILURE), True)
        history.emit(RunStatusChanged(RunStatus.ERROR, error="boom"), True)
        run.done_event = history.emit(RunDone(RunStatus.ERROR), True)
    else:
        run.status, run.ended_by = RunStatus.COMPLETED, "max_rounds"
        history.emit(RunStatusChanged(RunStatus.COMPLETED, ended_by="max_rounds"), True)
        run.done_event = history.emit(RunDone(RunStatus.COMPLETED, "max_rounds"), True)


@st.composite
def histories(draw: st.DrawFn) -> History:
    history = History(_new_run())
    history.emit(RunStatusChanged(RunStatus.RUNNING), True)
    for number in range(draw(st.integers(1, 3))):
        _between(draw, history)
        _round(draw, history, number)
    if draw(st.booleans()):
        _ending(draw, history)
    else:  # handed over, or its process died: what it wrote is all the log had
        history.run.status = RunStatus.RUNNING
    history.run.messages = [m for m in history.run.messages if m.author]
    if history.run.status is RunStatus.RUNNING and draw(st.booleans()):
        # Handed over: the departing owner's last event is the `interrupted` it said, and
        # the id it recorded (a process that died records nothing).
        said = Interrupted(HANDOVER, history.run.turn_count)
        history.run.last_event = history.emit(said, True)
    return history


def _rebuilt(history: History) -> list[Event]:
    run = history.run
    if run.status.finished:
        return list(rebuild(run).events)
    if run.last_event is not None:  # handed over: its `interrupted` ended what the log had
        return resumable(run, 16)
    # Its process died with a turn open right after what storage has: the lost log may
    # have used every id up to the end of what it wrote.
    if max(history.stored) == len(history.live):
        return resumable(run, 16)  # it died between turns, with all it said stored
    run.open_turn_event = max(history.stored) + 1
    return resumable(run, len(history.live) - run.open_turn_event)


def check_coverage(history: History, rebuilt: Sequence[Event]) -> None:
    """Every stored event at its id with its data; every other id up to the last covered
    by exactly one snapshot, which names it, carries the whole text of the turns whose
    tokens it stands for, and stands for no id another event holds."""
    live = {e.seq: e for e in history.live}
    seqs = [e.seq for e in rebuilt]
    assert seqs == sorted(set(seqs))
    assert seqs[-1] == len(history.live)
    kept = {e.seq for e in rebuilt if e.type != "snapshot"}
    assert kept == history.stored
    covered: list[int] = []
    for item in rebuilt:
        if item.type != "snapshot":
            assert (item.type, item.data) == (live[item.seq].type, live[item.seq].data)
            covered.append(item.seq)
            continue
        ranges = ranges_of(item)
        ids = [seq for first, last in ranges for seq in range(first, last + 1)]
        assert ids == sorted(set(ids))
        assert ids[-1] == item.seq
        assert item.data["first_id"] == ids[0]
        assert not kept & set(ids)
        covered += ids
        texts = {m["message_id"]: m["content"] for m in item.data["messages"]}
        for seq in ids:
            if seq in history.texts:  # a token of a saved turn: its whole text is here
                message = history.texts[seq]
                assert texts.get(message.id) == message.content, (seq, item.data)
    assert sorted(covered) == list(range(1, len(history.live) + 1))  # each id once
    if history.run.status.finished:
        assert rebuilt[-1].type == "done"


async def _drain(batches: AsyncIterator[Sequence[Event]]) -> list[Event]:
    return [item async for batch in batches for item in batch]


@dataclass
class Logs:
    memory: InMemoryEventLog
    redis: RedisEventLog


@pytest.fixture
async def logs(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Logs]:
    await require_redis()
    # Tests set the events a tail keeps (TAIL_SIZES): restored here afterwards.
    monkeypatch.setattr(redis_log, "TAIL_KEPT_EVENTS", redis_log.TAIL_KEPT_EVENTS)
    prefix = f"symposia-test:{uuid.uuid4().hex}:"
    redis = RedisEventLog(REDIS_URL, prefix=prefix, client_name="symposia-test-coverage")
    await redis.start()
    try:
        yield Logs(InMemoryEventLog(), redis)
    finally:
        await redis.aclose()
        await _delete_prefix(prefix)


async def _appended(log: InMemoryEventLog | RedisEventLog, stream: str) -> list[Event]:
    """A restored stream goes on: what its next owner writes is numbered after it."""
    return [
        await log.append(stream, "resumed", Resumed(3, 1).data()),
        await log.append(stream, "run_status", RunStatusChanged(RunStatus.CANCELLED).data()),
        await log.append(stream, "done", RunDone(RunStatus.CANCELLED).data()),
    ]


def _same(got: Sequence[Event], want: Sequence[Event]) -> bool:
    return [(e.seq, e.type, e.data) for e in got] == [(e.seq, e.type, e.data) for e in want]


async def check_resumes(logs: Logs, events: list[Event], go_on: bool) -> None:
    """Resume after every id, on every log, gives exactly the events after it."""
    stream = f"run-{uuid.uuid4().hex}"
    stored = StoredStream(tuple(events))
    full = list(events)
    for log in (logs.memory, logs.redis):
        await log.restore(stream, events)
        if go_on:
            appended = await _appended(log, stream)
            if log is logs.memory:
                full += appended
            assert _same(appended, full[-3:])
        await log.close(stream)
    for after in range(full[-1].seq + 1):
        want = [e for e in full if e.seq > after]
        from_storage = [e for e in events if e.seq > after]
        assert _same(await _drain(stored.batches(stream, after, 3)), from_storage), after
        for log in (logs.memory, logs.redis):
            assert _same(await log.read(stream, after), want), (type(log).__name__, after)
        for kept in TAIL_SIZES:  # a tail holding the whole stream, or its last few events
            redis_log.TAIL_KEPT_EVENTS = kept
            for log in (logs.memory, logs.redis):
                got = await _drain(log.batches(stream, after, 3))
                assert _same(got, want), (type(log).__name__, "batches", kept, after)


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
async def test_every_id_is_covered_once_and_resumes_give_what_follows(
    logs: Logs, history: History
) -> None:
    rebuilt = _rebuilt(history)
    check_coverage(history, rebuilt)
    await check_resumes(logs, rebuilt, go_on=not history.run.status.finished)


@settings(max_examples=200, deadline=None)
@given(history=histories())
def test_every_event_reads_back_as_the_payload_that_wrote_it(history: History) -> None:
    for item in [*history.live, *_rebuilt(history)]:
        payload = payload_of(item)
        assert (payload.type, payload.data()) == (item.type, item.data)


def _interleaved_round() -> History:
    """The case of the issue: two turns of a round finish on consecutive ids, then a vote."""
    history = History(_new_run())
    history.emit(RunStatusChanged(RunStatus.RUNNING), True)
    a, b = BotTurn(0, 0, "A", 0), BotTurn(1, 1, "B", 0)
    ma = Message(role="assistant", author="A", content="", bot_index=0, turn=0, round=0)
    mb = Message(role="assistant", author="B", content="", bot_index=1, turn=1, round=0)
    ma.start_event = history.emit(TurnStart(a, None), True)
    mb.start_event = history.emit(TurnStart(b, None), True)
    for i in range(6):
        for speaker, message in ((a, ma), (b, mb)):
            message.content += f"{speaker.name}{i} "
            history.texts[history.emit(Token(speaker.token_fields(), f"{speaker.name}{i} "))] = (
                message
            )
    for speaker, message in ((a, ma), (b, mb)):
        message.complete_event = len(history.live) + 1
        history.emit(TurnComplete(speaker, message), True)
    history.run.messages = [ma, mb]
    verdict = Verdict("vote", "x", {"x": 2}, "")
    history.run.policy_state["verdict"] = {
        **verdict.data(),
        "event_id": history.emit(verdict, True),
    }
    history.run.status, history.run.ended_by = RunStatus.COMPLETED, "max_rounds"
    history.emit(RunStatusChanged(RunStatus.COMPLETED, ended_by="max_rounds"), True)
    history.run.done_event = history.emit(RunDone(RunStatus.COMPLETED, "max_rounds"), True)
    return history


def test_turns_finishing_on_consecutive_ids_keep_both_their_ends() -> None:
    history = _interleaved_round()
    rebuilt = rebuild(history.run).events
    check_coverage(history, rebuilt)
    kinds = [(e.seq, e.type) for e in rebuilt]
    assert kinds == [
        (1, "run_status"),
        (2, "turn_start"),
        (3, "turn_start"),
        (15, "snapshot"),
        (16, "turn_complete"),
        (17, "turn_complete"),
        (18, "verdict"),
        (19, "run_status"),
        (20, "done"),
    ]
    snapshot = rebuilt[3].data
    assert snapshot["ranges"] == [[4, 15]]
    assert [m["content"] for m in snapshot["messages"]] == [
        "A0 A1 A2 A3 A4 A5 ",
        "B0 B1 B2 B3 B4 B5 ",
    ]
    assert rebuilt[6].data == history.live[17].data  # the verdict, not an empty snapshot


async def test_a_redis_stream_restored_with_gaps_resumes_after_any_id(logs: Logs) -> None:
    """The positions of the issue: a run taken over after its in-memory log died, restored
    into Redis (a snapshot for the lost ids), then written on; resuming after 3 must give
    the snapshot, after 21 what follows 21, after each of 4121-4214 the events after it
    and the `done`."""
    history = _interleaved_round()
    run = history.run
    run.status, run.done_event, run.open_turn_event = RunStatus.RUNNING, None, 21
    run.policy_state.clear()
    restored = resumable(run, 4096 + 2)
    assert [e.seq for e in restored][-1] == 21 + 4098
    stream = f"run-{uuid.uuid4().hex}"
    await logs.redis.restore(stream, restored)
    for i in range(94):
        await logs.redis.append(stream, "token", Token({"turn": 2}, f"w{i}").data())
    await logs.redis.append(stream, "done", RunDone(RunStatus.COMPLETED).data())
    await logs.redis.close(stream)
    everything = [*restored, *await logs.redis.read(stream, restored[-1].seq)]
    assert everything[-1].seq == 4214
    assert everything[-1].type == "done"
    for after in [0, 3, 14, 15, 21, 22, 4119, *range(4120, 4215)]:
        want = [e for e in everything if e.seq > after]
        for kept in TAIL_SIZES:
            redis_log.TAIL_KEPT_EVENTS = kept
            assert _same(await _drain(logs.redis.batches(stream, after)), want), (kept, after)
        assert _same(await logs.redis.read(stream, after), want), after
    first = (await logs.redis.read(stream, 3))[0]
    assert first.type == "snapshot"
    assert ranges_of(first) == ((4, 15),)
    gap = (await logs.redis.read(stream, 21))[0]
    assert (gap.type, ranges_of(gap)) == ("snapshot", ((18, 4119),))


async def test_a_live_tail_follows_a_restored_stream(logs: Logs) -> None:
    """A viewer who joins the restored stream before its next owner writes follows it,
    whatever id it resumed after."""
    events = list(rebuild(_interleaved_round().run).events)[:-3]  # unfinished: no end
    stream = f"run-{uuid.uuid4().hex}"
    await logs.redis.restore(stream, events)
    readers = [asyncio.create_task(_drain(logs.redis.batches(stream, k))) for k in (0, 3, 15, 16)]
    await asyncio.sleep(0.2)
    tail = await _appended(logs.redis, stream)
    await logs.redis.close(stream)
    for after, reader in zip((0, 3, 15, 16), readers, strict=True):
        want = [e for e in [*events, *tail] if e.seq > after]
        assert _same(await asyncio.wait_for(reader, 10), want), after


def _as_history(frames: list[Frame], run: Run) -> History:
    """A run read live, as the property test's `History`: what storage can place is every
    event but the tokens (and the verdict, once its id is stored)."""
    history = History(run)
    history.live = [Event(f.seq, f.event, f.data) for f in frames]  # type: ignore[arg-type]
    history.stored = {f.seq for f in frames if f.event != "token"}
    messages = {m.id: m for m in run.messages}
    open_turns: dict[int, Message] = {}
    for f in frames:
        if f.event == "turn_start":
            open_turns[f.data["turn"]] = next(m for m in run.messages if m.turn == f.data["turn"])
        elif f.event == "token":
            history.texts[f.seq] = open_turns[f.data["turn"]]
        elif f.event == "turn_complete":
            assert f.data["message_id"] in messages
    return history


@pytest.mark.parametrize("after_retention", [False, True])
async def test_a_finished_rounds_run_reads_back_after_a_restart_or_retention(
    database_url: str, after_retention: bool
) -> None:
    """Issue 21 point 4: a `rounds` run with a vote, its agents' turns interleaved (and
    ending on consecutive ids), read after a restart or past the live log's retention."""
    scripted = ScriptedProvider(token_delay=0.0)
    steps = [f"s{i} " for i in range(5)]
    scripted.add_script("x", Script(chunks=[*steps, "\nAnswer: 42"], delay=0.005))
    bots = [{"name": n, "model": "scripted/x"} for n in ("A", "B", "C")]
    body = {
        "topic": "6 times 7?",
        "bots": bots,
        "policy": "rounds",
        "policy_config": {"max_rounds": 2, "aggregation": "vote"},
    }
    retention = {"event_log_retention_seconds": 0.05} if after_retention else {}
    async with serving(database_url, scripted, **retention) as (client, container):
        created = await client.post("/api/run", json=body)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        live = await asyncio.wait_for(collect(client, f"/api/stream/{run_id}"), 30)
        assert [f.seq for f in live] == list(range(1, len(live) + 1))
        # The policy stored the verdict with the id of its event, beside it.
        run = await container.run_repository.get(run_id)
        assert run is not None
        verdict = next(f for f in live if f.event == "verdict")
        assert run.policy_state["verdict_event_id"] == verdict.seq
        if after_retention:
            await asyncio.sleep(0.1)
            await client.post("/api/run", json=body)  # a new stream expires finished ones
            assert not await container.log.exists(run_id)
    async with serving(database_url, scripted) as (client, container):
        run = await container.run_repository.get(run_id)
        assert run is not None
        history = _as_history(live, run)
        rebuilt = await collect(client, f"/api/stream/{run_id}")
        as_events = [Event(f.seq, f.event, f.data) for f in rebuilt]  # type: ignore[arg-type]
        check_coverage(history, as_events)
        assert [f.event for f in rebuilt][-3:] == ["verdict", "run_status", "done"]
        for after in range(live[-1].seq):
            got = await collect(
                client, f"/api/stream/{run_id}", headers={"Last-Event-ID": str(after)}
            )
            assert [(f.seq, f.event, f.data) for f in got] == [
                (e.seq, e.type, e.data) for e in as_events if e.seq > after
            ], after


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_a_restored_stream_trimmed_past_a_position_says_it_is_gone(
    logs: Logs, kind: str
) -> None:
    """Resuming behind what a restored stream still retains is a 410, never a silent skip;
    behind nothing it gives exactly what follows."""
    log: InMemoryEventLog | RedisEventLog
    if kind == "memory":
        log = InMemoryEventLog(max_events=100)
    else:
        log = RedisEventLog(REDIS_URL, max_events=100, prefix=logs.redis._prefix)
        await log.start()
    try:
        events = list(rebuild(_interleaved_round().run).events)[:-3]
        stream = f"run-{uuid.uuid4().hex}"
        await log.restore(stream, events)
        appended = [await log.append(stream, "token", {"delta": f"{i}"}) for i in range(300)]
        for after in (0, 3, 15):
            with pytest.raises(ResumeGoneError):
                await log.read(stream, after)
        for after in range(appended[-60].seq, appended[-1].seq + 1):
            want = [e for e in appended if e.seq > after]
            assert _same(await log.read(stream, after), want), after
    finally:
        if isinstance(log, RedisEventLog):
            await log.aclose()


def test_what_storage_cannot_place_comes_before_the_end() -> None:
    """A turn stored without event ids (an older version) is numbered after what storage
    knows, and the run's end after it: the stream still ends with `done`, each id once."""
    history = _interleaved_round()
    legacy = Message(role="assistant", author="C", content="old", bot_index=2, turn=2)
    history.run.messages.append(legacy)
    rebuilt = rebuild(history.run).events
    assert [e.type for e in rebuilt][-5:] == [
        "turn_start",
        "token",
        "turn_complete",
        "run_status",
        "done",
    ]
    assert [e.seq for e in rebuilt][-6:] == list(range(18, 24))
    assert rebuilt[-6].type == "verdict"

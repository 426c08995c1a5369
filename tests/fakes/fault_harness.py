"""The fault suite's stage: `symposia serve` processes whose PostgreSQL and Redis are
reached through fault proxies, a fake model server that counts every upstream call, a
Redis of the suite's own (so it can be cut, stalled, and restarted empty), viewers that
stay, reconnect, replay and resume, and the invariants every cell checks.

Nothing here knows a fault's expected outcome: a cell (tests/test_fault_suite.py) is a
policy, a log and a fault; the checks are the same for all of them (docs/faults.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.databases import PG_HOST, PG_PORT, PG_USER
from tests.fakes.fault_proxy import FaultProxy
from tests.fakes.live import free_port
from tests.fakes.provider_server import FakeProviderServer, Received, Reply
from tests.fakes.workers import Cluster, Worker, worker_env
from tests.sse import frames

# Secrets every server of the suite is given; none may appear in a server's output.
PG_PASSWORD = "pg-canary-fault-4d1e0b"  # trust auth: PostgreSQL never asks for it
REDIS_PASSWORD = "redis-canary-fault-9b7c21"
CANARIES = {
    "OPENAI_API_KEY": "sk-canary-fault-openai-7f3a9c55",
    "ANTHROPIC_API_KEY": "sk-ant-canary-fault-51e2aa70",
    "SESSION_SECRET": "session-canary-fault-0123456789abcdef0123",
}
SECRETS = (PG_PASSWORD, REDIS_PASSWORD, *CANARIES.values())

AGENT_TOKENS = 10  # words of an agent's answer, after its call marker
TOKEN_DELAY = 0.08  # seconds before each: an agent's turn lasts about a second
HOLD_SECONDS = 4.0  # how long a dependency stays cut or stalled
CONVERGE_SECONDS = 35.0  # after the fault clears, the run has a final status within this
STOP_SECONDS = 10.0  # a stop after the fault clears ends its run within this
FAULT_AT_SECONDS = 25.0  # the fault is applied mid-turn, once a viewer saw this turn start
LIMIT = 2  # MAX_CONCURRENT_RUNS_PER_PRINCIPAL: the cell's two runs
FINISHED = {"completed", "cancelled", "error", "interrupted"}
AGENT_MODELS = ("agent-a", "agent-b", "agent-c")
PROBE_MODEL = "probe"  # the run a cell stops, and the limit's probes
DECIDING_MODELS = ("boss", "mod", "judge")


# -- the upstream model, counting --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One completion request the fake model server received."""

    number: int
    model: str
    context: str  # the whole request's messages, as JSON: a turn asked twice repeats it


@dataclass
class Upstream:
    """The fake OpenAI server every agent's model points at; it answers each agent call
    with its call number first (`c7 w1 w2 ...`), so a stored turn names the call that
    produced it, and plays the supervisor, the moderator and the judge."""

    server: FakeProviderServer
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.openai_models = [*AGENT_MODELS, PROBE_MODEL, *DECIDING_MODELS]
        self.server.responder = self.answer

    def answer(self, request: Received) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model", ""))
        call = Call(len(self.calls) + 1, model, json.dumps(body.get("messages"), sort_keys=True))
        self.calls.append(call)
        if model == "boss":  # the selector's supervisor: B, C, A, B, ...
            name = "ABC"[len(self.of("boss")) % 3]
            return Reply(tokens=[name])
        if model == "mod":
            return Reply(
                tokens=['{"decided": false, "winner": null, "reason": "even", "answer": ""}']
            )
        if model == "judge":
            verdict = '{"decided": true, "winner": "B", "reason": "clearer", "answer": "42"}'
            return Reply(tokens=[verdict])
        words = [f"c{call.number}", *(f" w{i}" for i in range(1, AGENT_TOKENS + 1))]
        if model != PROBE_MODEL:
            words.append(" answer: 42")  # what `rounds` votes on
        return Reply(tokens=words, delay=TOKEN_DELAY)

    def of(self, *models: str) -> list[Call]:
        return [call for call in self.calls if call.model in models]


# -- a Redis of the suite's own ------------------------------------------------------------


class RedisProcess:
    """`redis-server` on a free port with a password and nothing persisted, so that a
    restart comes back empty (never the machine's 6379, which other tests share)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--requirepass", REDIS_PASSWORD),
                *("--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(f"AUTH {REDIS_PASSWORD}\r\nPING\r\n".encode())
                answer = await asyncio.wait_for(reader.read(64), 2)
                writer.close()
                if b"PONG" in answer:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port} did not start in {timeout}s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    async def restart_empty(self) -> None:
        self.kill()
        self.start()
        await self.wait_ready()


# -- policies ------------------------------------------------------------------------------


def _bots(*names: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "model": f"openai/{model}"}
        for name, model in zip(names, AGENT_MODELS, strict=False)
    ]


@dataclass(frozen=True)
class Policy:
    """A run as a cell creates it, and what its transcript may hold at most."""

    name: str
    body: dict[str, Any]
    most_agent_turns: int  # the schedule: more stored agent turns than this is a repeat
    by_round: bool = False  # a turn is (round, agent), not a turn number
    human: bool = False  # a person speaks when the run waits for them


POLICIES = {
    "round_robin": Policy(
        "round_robin", {"topic": "count", "bots": _bots("A", "B"), "max_turns": 4}, 4
    ),
    "rounds_vote": Policy(
        "rounds_vote",
        {
            "topic": "what is 6 x 7?",
            "bots": _bots("A", "B", "C"),
            "policy": "rounds",
            "policy_config": {"max_rounds": 2, "aggregation": "vote"},
        },
        6,
        by_round=True,
    ),
    "selector": Policy(
        "selector",
        {
            "topic": "build a parser",
            "bots": _bots("A", "B", "C"),
            "max_turns": 4,
            "policy": "selector",
            "policy_config": {"model": "openai/boss", "allow_repeat": True, "max_attempts": 1},
        },
        4,
    ),
    "moderated": Policy(
        "moderated",
        {
            "topic": "is 0.999... = 1?",
            "bots": _bots("A", "B"),
            "policy": "moderated",
            "policy_config": {
                "moderator_model": "openai/mod",
                "judge_model": "openai/judge",
                "max_rounds": 2,
                "max_attempts": 1,
            },
        },
        4,
        by_round=True,
    ),
    "human": Policy(
        "human",
        {
            "topic": "plan a trip",
            "bots": [{"name": "A", "model": "openai/agent-a"}, {"name": "Ana", "kind": "human"}],
            "max_turns": 4,
        },
        2,
        human=True,
    ),
}


def probe_body(n: int) -> dict[str, Any]:
    """A long run of two agents, to stop (`n` keeps its requests apart from another's)."""
    # Each with a prompt of its own: a turn cut empty is left out of the next speaker's
    # context, and the two agents' requests must not then look alike.
    bots = [
        {"name": name, "model": f"openai/{PROBE_MODEL}", "system_prompt": f"You are {name}."}
        for name in ("P", "Q")
    ]
    return {"topic": f"probe {n}", "bots": bots, "max_turns": 40}


# -- viewers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    id: int
    event: str
    data: Any

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.id, self.event, json.dumps(self.data, sort_keys=True))


@dataclass(frozen=True, slots=True)
class Attempt:
    worker: str
    after: int
    status: int
    ended: str


class FaultViewer:
    """Follows a run's stream to `done`, whatever happens: a connection that ends, fails
    or is refused (503 while a dependency is down) is tried again on the next live worker
    with `Last-Event-ID`, as a browser's EventSource does."""

    def __init__(self, stack: Stack, run_id: str, first: Worker, name: str) -> None:
        self.stack = stack
        self.run_id = run_id
        self.name = name
        self.events: list[Seen] = []
        self.attempts: list[Attempt] = []
        self.ended_without_done = False
        self._arrived = asyncio.Event()
        self.task = asyncio.create_task(self._follow(first), name=f"viewer-{name}")

    @property
    def finished(self) -> bool:
        return bool(self.events) and self.events[-1].event == "done"

    async def _follow(self, worker: Worker) -> None:
        timeout = httpx.Timeout(10, connect=2)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while not self.finished:
                after = self.events[-1].id if self.events else 0
                headers = {"Last-Event-ID": str(after)} if after else {}
                status, ended = 0, "closed"
                try:
                    url = f"{worker.base_url}/api/stream/{self.run_id}"
                    async with client.stream("GET", url, headers=headers) as response:
                        status = response.status_code
                        if status == 204:  # finished before: the stream has nothing left
                            self.ended_without_done = True
                            ended = "204"
                        elif status == 200:
                            async for frame in frames(response):
                                if frame.comment is None:
                                    self.events.append(
                                        Seen(frame.seq, frame.event or "", frame.data)
                                    )
                                    self._arrived.set()
                                    if frame.event == "done":
                                        ended = "done"
                                        break
                        else:
                            await response.aread()
                            ended = f"status {status}"
                except (httpx.TransportError, ValueError) as exc:
                    ended = type(exc).__name__
                self.attempts.append(Attempt(worker.name, after, status, ended))
                if ended == "204":
                    return
                if not self.finished:
                    worker = self.stack.next_worker(worker)
                    await asyncio.sleep(0.2)

    async def wait_for(self, predicate: Callable[[Seen], bool], timeout: float) -> Seen:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for received in self.events[seen:]:
                if predicate(received):
                    return received
            seen = len(self.events)
            if self.task.done():
                raise AssertionError(f"{self.name}: the stream ended without it: {self.attempts}")
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no such event in {timeout}s: {self.attempts}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_done(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            tail = [e.key for e in self.events[-3:]]
            raise AssertionError(
                f"{self.name}: no `done` in {timeout}s; last {tail}; attempts {self.attempts}"
            ) from None


# -- the stage -----------------------------------------------------------------------------


@dataclass
class Stack:
    """Servers, their dependencies behind proxies, and the fake model, for one cell."""

    log: str  # "redis" or "memory"
    cluster: Cluster
    upstream: Upstream
    pg_proxy: FaultProxy
    redis: RedisProcess | None
    redis_proxy: FaultProxy | None
    client: httpx.AsyncClient

    @property
    def workers(self) -> list[Worker]:
        return self.cluster.workers

    def next_worker(self, worker: Worker) -> Worker:
        return self.cluster.other_than(worker)

    def live_worker(self) -> Worker:
        alive = self.cluster.alive()
        assert alive, "no server is running"
        return alive[0]

    def server_output(self) -> str:
        return "\n".join(worker.log_text() for worker in self.workers)

    # -- calls, patient with a fault's 503s --------------------------------------------------

    async def create_run(self, worker: Worker, body: dict[str, Any]) -> str:
        response = await self.client.post(f"{worker.base_url}/api/run", json=body)
        assert response.status_code == 201, response.text
        run_id: str = response.json()["id"]
        return run_id

    async def summary(self, run_id: str) -> dict[str, Any] | None:
        """The run as any live server answers it, or None while none can."""
        for worker in self.cluster.alive():
            with contextlib.suppress(httpx.TransportError):
                response = await self.client.get(f"{worker.base_url}/api/run/{run_id}")
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    return found
        return None

    async def converged(self, run_id: str, bound: float) -> dict[str, Any]:
        """The run's summary once its status is final; a failure naming what it was
        after `bound` seconds otherwise."""
        deadline = time.monotonic() + bound
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = await self.summary(run_id) or last
            if last is not None and last["status"] in FINISHED:
                return last
            await asyncio.sleep(0.25)
        shown = {k: (last or {}).get(k) for k in ("status", "stop_reason", "ended_by", "error")}
        raise AssertionError(
            f"run {run_id} has no final status {bound}s after the fault cleared: {shown}\n"
            f"{self.cluster.logs()}"
        )

    async def transcript(self, run_id: str) -> dict[str, Any]:
        worker = self.live_worker()
        response = await self.client.get(f"{worker.base_url}/api/export/{run_id}.json")
        assert response.status_code == 200, response.text
        exported: dict[str, Any] = response.json()
        return exported

    async def read(self, worker: Worker, run_id: str, after: int) -> list[Seen]:
        """The stream after `after`, read to its end on one connection."""
        headers = {"Last-Event-ID": str(after)} if after else {}
        out: list[Seen] = []
        url = f"{worker.base_url}/api/stream/{run_id}"
        async with self.client.stream("GET", url, headers=headers, timeout=15) as response:
            if response.status_code == 204:
                return out
            assert response.status_code == 200, (after, await response.aread())
            async for frame in frames(response):
                if frame.comment is None:
                    out.append(Seen(frame.seq, frame.event or "", frame.data))
                    if frame.event == "done":
                        break
        return out


@contextlib.asynccontextmanager
async def stack(log: str, database: str, directory: Path, **settings: str) -> AsyncIterator[Stack]:
    """Everything a cell needs, torn down whatever the cell did to it."""
    async with contextlib.AsyncExitStack() as exits:
        fake = await exits.enter_async_context(FakeProviderServer())
        upstream = Upstream(fake)
        pg_proxy = await exits.enter_async_context(FaultProxy(PG_HOST, PG_PORT))
        redis: RedisProcess | None = None
        redis_proxy: FaultProxy | None = None
        env = worker_env(
            f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{pg_proxy.listen_port}/{database}",
            OPENAI_BASE_URL=fake.openai_base_url,
            DEFAULT_MODEL="openai/agent-a",
            MAX_CONCURRENT_RUNS_PER_PRINCIPAL=str(LIMIT),
            HUMAN_TIMEOUT_SECONDS="120",
            LLM_RETRY_BASE_SECONDS="0.05",
            **CANARIES,
        )
        if log == "redis":
            redis = RedisProcess(directory)
            redis.start()
            exits.callback(redis.kill)
            await redis.wait_ready()
            redis_proxy = await exits.enter_async_context(FaultProxy("127.0.0.1", redis.port))
            env["REDIS_URL"] = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_proxy.listen_port}/0"
            env["EVENT_LOG"] = "redis"
        else:
            env.pop("REDIS_URL", None)
            env["EVENT_LOG"] = "memory"
        env.update(settings)
        cluster = Cluster(env, directory)
        exits.push_async_callback(cluster.close)
        cluster.add()
        if log == "redis":
            cluster.add()  # a second server on the same database and Redis
        await cluster.start()
        client = await exits.enter_async_context(httpx.AsyncClient(timeout=10))
        yield Stack(log, cluster, upstream, pg_proxy, redis, redis_proxy, client)


# -- the people in a run -------------------------------------------------------------------


async def answer_as_person(stack: Stack, run_id: str) -> None:
    """Speak whenever the run waits for its human agent, until it ends (a 503 while a
    dependency is down is tried again)."""
    while True:
        summary = await stack.summary(run_id)
        if summary is not None and summary["status"] in FINISHED:
            return
        if summary is not None and summary["status"] == "awaiting_input":
            worker = stack.live_worker()
            with contextlib.suppress(httpx.TransportError):
                response = await stack.client.post(
                    f"{worker.base_url}/api/run/{run_id}/messages",
                    json={"content": "Let us go by train."},
                )
                if response.status_code == 201:
                    await asyncio.sleep(1.0)  # the run goes on before it waits again
                    continue
        await asyncio.sleep(0.2)


# -- invariants ----------------------------------------------------------------------------


def turns_generated_once(policy: Policy, upstream: Upstream, transcript: dict[str, Any]) -> None:
    """No turn generated twice: no request repeated; no turn (number, or round and agent)
    stored twice; every agent call kept as exactly one stored turn (complete or partial,
    its text starting with the call's marker); no more turns than the schedule."""
    repeated = [
        k for k, n in Counter((c.model, c.context) for c in upstream.calls).items() if n > 1
    ]
    assert not repeated, f"requests sent twice (a turn or decision asked again): {repeated[:1]}"
    agents = [
        m for m in transcript["messages"] if m["bot_index"] is not None and m["role"] == "assistant"
    ]
    keys = [(m["round"], m["bot_index"]) if policy.by_round else m["turn"] for m in agents]
    doubled = [k for k, n in Counter(keys).items() if n > 1]
    assert not doubled, f"turns stored twice: {doubled}; {[_brief(m) for m in agents]}"
    turns = [m["turn"] for m in transcript["messages"] if m["turn"] is not None]
    assert len(turns) == len(set(turns)), f"turn numbers reused: {turns}"
    assert len(agents) <= policy.most_agent_turns, (
        f"{len(agents)} agent turns stored, the schedule has {policy.most_agent_turns}: "
        f"{[_brief(m) for m in agents]}"
    )
    calls = upstream.of(*AGENT_MODELS)
    kept = Counter(m["content"].split(" ", 1)[0] for m in agents if m["content"])
    over = {marker: n for marker, n in kept.items() if n > 1}
    assert not over, f"one call's text stored as several turns: {over}"
    lost = [c.number for c in calls if f"c{c.number}" not in kept]
    silent = [m for m in agents if not m["content"]]
    assert len(lost) <= len(silent), (
        f"{len(calls)} agent calls upstream, {len(agents)} turns stored: calls {lost} kept "
        f"nowhere (a turn asked again, or lost); stored {[_brief(m) for m in agents]}"
    )


def _brief(message: dict[str, Any]) -> str:
    head = (message["content"] or "").split(" ", 1)[0]
    return (
        f"t{message['turn']}/r{message['round']}/b{message['bot_index']}:{head}:{message['status']}"
    )


def stands_for(e: Seen) -> list[int]:
    """The ids an event stands for: its own; a snapshot's, the ids its `ranges` name
    (a snapshot written before ranges: `first_id` up to its own id)."""
    if e.event != "snapshot":
        return [e.id]
    ranges = e.data.get("ranges")
    if ranges is None:
        return list(range(int(e.data.get("first_id", e.id)), e.id + 1))
    return [seq for first, last in ranges for seq in range(int(first), int(last) + 1)]


def covered_once(events: list[Seen], name: str, *, reconnected: bool = False) -> None:
    """Ids strictly increase, and every id up to the last is stood for by exactly one
    event (a snapshot stands for the ids it names). A viewer that reconnected may get again
    a snapshot standing for ids it had (resuming after an id inside a snapshot gives that
    snapshot: docs/events.md), never a gap."""
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)), f"{name}: ids not strictly increasing: {ids}"
    covered: list[int] = []
    high = 0
    for e in events:
        stood = stands_for(e)
        assert min(stood) <= high + 1, f"{name}: ids {high + 1}..{min(stood) - 1} never came"
        if reconnected:
            stood = [seq for seq in stood if seq > high]
        covered.extend(stood)
        high = e.id
    if events:
        assert sorted(covered) == list(range(1, events[-1].id + 1)), (
            f"{name}: ids not covered exactly once: {_ranges(covered)}"
        )


def _ranges(ids: list[int]) -> str:
    doubled = sorted(k for k, n in Counter(ids).items() if n > 1)
    missing = sorted(set(range(1, max(ids, default=0) + 1)) - set(ids))
    return f"doubled {doubled[:10]}, missing {missing[:10]}"


def one_event_per_id(sources: dict[str, list[Seen]]) -> None:
    """Every id means one event for every viewer: an id's events agree everywhere, and a
    snapshot never stands for an id at which any viewer got something other than a token
    (or another snapshot)."""
    at: dict[int, dict[str, tuple[str, str]]] = {}
    for name, events in sources.items():
        for e in events:
            if e.event != "snapshot":
                at.setdefault(e.id, {})[name] = (e.event, e.key[2])
    for seq, seen in at.items():
        distinct = set(seen.values())
        assert len(distinct) == 1, f"id {seq} means different events: {seen}"
    for name, events in sources.items():
        for e in events:
            if e.event != "snapshot":
                continue
            for seq in stands_for(e):
                held = {(who, ev) for who, (ev, _) in at.get(seq, {}).items() if ev != "token"}
                assert not held, (
                    f"{name}: the snapshot at {e.id} stands for id {seq}, which is {held}"
                )


async def resumes_agree(
    stack: Stack, run_id: str, full: list[Seen], worker: Worker
) -> dict[str, list[Seen]]:
    """Resume after each id (and 0) on `worker`: each must give exactly what follows it
    in the stream read from the start. Returns each resume as a source."""
    gate = asyncio.Semaphore(6)
    ids = [0, *(e.id for e in full)]
    if len(ids) > 150:  # a long stream: the first 100 ids and every 5th after
        ids = ids[:100] + ids[100::5]

    async def one(after: int) -> tuple[int, list[Seen]]:
        async with gate:
            return after, await stack.read(worker, run_id, after)

    results = await asyncio.gather(*(one(after) for after in ids))
    out: dict[str, list[Seen]] = {}
    for after, got in results:
        expected = [e for e in full if e.id > after]
        assert [e.key for e in got] == [e.key for e in expected], (
            f"{worker.name}: resume after {after} gave {[e.key[:2] for e in got][:8]}, "
            f"expected {[e.key[:2] for e in expected][:8]}"
        )
        out[f"{worker.name} after {after}"] = got
    return out


def no_secret_printed(output: str) -> None:
    shown = [secret for secret in SECRETS if secret in output]
    assert not shown, f"secrets printed by a server: {shown}"


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.1)

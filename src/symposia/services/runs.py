"""Runs as a service: the commands (create, branch, say, edit a bot, stop, delete) and
reads of a run. The rest of a run's life has a module each: its background task
(`run_tasks`), its lease shared with other processes, their sweep and takeover
(`run_leases`), and who may watch its stream and from where (`run_streams`).

The running-runs limit is counted in the database, across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from symposia.domain.models import (
    BotConfig,
    HumanTimeout,
    Message,
    Run,
    RunStatus,
    new_id,
    utcnow,
)
from symposia.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
)
from symposia.events.log import EventLog
from symposia.events.replay import StoredStream
from symposia.governance.meter import Meter
from symposia.orchestration import termination
from symposia.orchestration.default_debate import default_bots
from symposia.orchestration.policies import policy_named
from symposia.orchestration.run_loop import RunLoop
from symposia.providers.pricing import PriceTable
from symposia.providers.registry import ProviderRegistry
from symposia.services.models import ModelCatalog
from symposia.services.run_leases import STOP_POLL_SECONDS, RunLeases
from symposia.services.run_streams import RunStreams
from symposia.services.run_tasks import RunTasks
from symposia.storage.repositories import RunRepository

logger = logging.getLogger(__name__)

__all__ = ["RunService", "default_bots"]  # default_bots: where callers have found it

STOP_WAIT_SECONDS = 5.0
LOCAL_PROVIDERS = frozenset({"local", "scripted"})  # they check their models themselves


@dataclass(slots=True)
class RunService:
    runs: RunRepository
    log: EventLog
    providers: ProviderRegistry
    loop: RunLoop
    catalog: ModelCatalog
    max_turns_cap: int
    max_tokens_limit: int
    max_running_per_owner: int = 5
    lease_seconds: float = 15.0
    resume: bool = True
    prices: PriceTable | None = None
    max_message_chars: int = 100_000
    meter: Meter | None = None  # its owner key's `models`, checked at creation
    tasks: RunTasks = field(init=False)
    leases: RunLeases = field(init=False)
    streams: RunStreams = field(init=False)
    _creating: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.tasks = RunTasks()
        self.streams = RunStreams(self.runs, self.log, self.tasks, self.lease_seconds)
        self.tasks.on_forget = self.streams.remember_owner
        self.leases = RunLeases(self.runs, self.loop, self.tasks, self.lease_seconds, self.resume)

    def check_max_tokens(self, value: int, field: str) -> None:
        if value > self.max_tokens_limit:
            raise InvalidInputError(
                f"{field} is {value}, above MAX_TOKENS_LIMIT ({self.max_tokens_limit})", field
            )

    async def create(
        self,
        topic: str,
        bots: list[BotConfig],
        max_turns: int,
        *,
        owner: str | None,
        policy: str = "round_robin",
        policy_config: dict[str, Any] | None = None,
        ending: dict[str, Any] | None = None,
        on_human_timeout: HumanTimeout = "end",
    ) -> Run:
        run = Run(
            topic=topic,
            bots=bots,
            max_turns=min(max_turns, self.max_turns_cap),
            owner=owner,
            strategy=policy,
            on_human_timeout=on_human_timeout,
        )
        run.policy_config = policy_named(policy).configure(policy_config or {}, run)
        run.max_turns = min(run.max_turns, self.max_turns_cap)  # a policy may have raised it
        run.termination = termination.validate(ending) if ending is not None else None
        if termination.uses(run.termination, "max_cost_usd"):
            self._check_prices(run)
        await self._check_key(run)
        for index, bot in enumerate(run.bots):
            if bot.kind == "human":
                continue  # a person: no model to check
            self.check_max_tokens(bot.max_tokens, f"bots.{index}.max_tokens")
            await self._check_model(bot.model, f"bots.{index}.model")
            for position, fallback in enumerate(bot.fallbacks):
                await self._check_model(fallback, f"bots.{index}.fallbacks.{position}")
        return await self._start(run)

    async def _start(self, run: Run) -> Run:
        """Store the run (within its owner's limit of running runs) and start its loop."""
        starting = self.leases.starting
        starting.add(run.id)  # stored, not yet spawned: no orphan to take over
        try:
            running = await self._store(run)
            if running is None:
                self.tasks.spawn(run.id, run.owner, self.loop.execute(run.id, self.tasks.control))
        finally:
            starting.discard(run.id)
        if running is not None:
            raise RateLimitedError(
                f"{running} runs are already going on for you; the limit is "
                f"{self.max_running_per_owner} (MAX_CONCURRENT_RUNS_PER_PRINCIPAL): stop one "
                "or wait for one to finish",
                headers={"Retry-After": "10"},
            )
        return run

    async def _store(self, run: Run) -> int | None:
        """Store the run with its stream made, unless over the limit (then: how many)."""
        async with self._creating:  # SQLite does not serialise the count; this process does
            # The stream is made before the row commits: a log that cannot take it leaves
            # no run behind the 503 (one a sweep would take over and pay for).
            return await self.runs.add_within(
                run,
                self.max_running_per_owner,
                self.lease_seconds,
                functools.partial(self.log.create, run.id),
            )

    async def _check_key(self, run: Run) -> None:
        """A run whose owner's key may not use one of its bots' models (or the policy's
        router) is refused now, naming the bot: 403 model_not_allowed."""
        if self.meter is None:
            return
        limits = await self.meter.limits_of(run.owner)
        if limits is None or limits.models is None:
            return
        for bot in run.bots:
            if bot.kind == "human":
                continue
            for model in (bot.model, *bot.fallbacks):
                self.meter.check_model(limits, model, f"bot {bot.name}")
        for name, value in (run.policy_config or {}).items():  # a selector's, a judge's
            if name.endswith("model") and isinstance(value, str):
                self.meter.check_model(limits, value, f"the {run.strategy} policy's {name}")

    def _check_prices(self, run: Run) -> None:
        """A cost budget is kept only if every bot's cost is known."""
        for index, bot in enumerate(run.bots):
            if bot.kind == "bot" and (self.prices is None or self.prices.price(bot.model) is None):
                raise InvalidInputError(
                    f"a cost budget needs the price of {bot.model!r}, which is not in the "
                    "price table: add it with PRICES_FILE",
                    f"bots.{index}.model",
                )

    async def start(self) -> None:
        """Start listening for stops asked of this process's runs on other processes."""
        self.leases.start()

    async def renew(self) -> int:
        return await self.leases.renew()

    async def sweep(self) -> int:
        return await self.leases.sweep()

    async def _check_model(self, full_name: str, field_name: str) -> None:
        provider, model = await self.providers.aresolve(full_name, field=field_name)
        if provider.name not in LOCAL_PROVIDERS:
            await self.catalog.check(provider, model, field_name)

    def _check_temperature(self, full_name: str) -> None:
        """A temperature is changed only where it is sent: a model whose API takes none
        (Anthropic's current Messages API) is refused by name, never stored and ignored."""
        provider, _ = self.providers.resolve(full_name, field="model")
        if "temperature" not in provider.features:
            raise InvalidInputError(
                f"the {provider.name} provider takes no temperature (model {full_name}): "
                "change system_prompt or max_tokens instead, or give the bot a model that "
                "takes one",
                "temperature",
            )

    async def get(self, run_id: str, *, owner: str | None) -> Run:
        """The run; another principal's run is "not found", never "forbidden"."""
        run = await self.runs.get(run_id)
        if run is None or (owner is not None and run.owner != owner):
            raise NotFoundError(f"run {run_id!r} not found")
        return run

    async def open_stream(self, run_id: str, *, owner: str | None) -> StoredStream | None:
        """Let `owner` watch the run's event stream (`RunStreams.open`)."""
        return await self.streams.open(run_id, owner=owner)

    async def branch(
        self,
        run_id: str,
        at_turn: int,
        bot_changes: dict[int, dict[str, Any]],
        max_turns: int | None,
        *,
        owner: str | None,
    ) -> Run:
        """A new run whose transcript is the original's first `at_turn` turns (the person's
        messages among them too), with the same policy and termination, some bots changed;
        it records its parent and branch point, and goes on from there."""
        parent = await self.get(run_id, owner=owner)
        turns = parent.turn_count
        if at_turn > turns:
            raise InvalidInputError(
                f"run {run_id!r} has taken {turns} turns; at_turn must be 0 to {turns}", "at_turn"
            )
        bots = list(parent.bots)
        for index, changes in bot_changes.items():
            if index >= len(bots):
                raise InvalidInputError(
                    f"run {run_id!r} has no bot {index} (it has {len(bots)})", "bots"
                )
            if "model" in changes:
                await self._check_model(changes["model"], f"bots.{index}.model")
            if "max_tokens" in changes:
                self.check_max_tokens(changes["max_tokens"], f"bots.{index}.max_tokens")
            bots[index] = replace(bots[index], **changes)
        kept: list[Message] = []
        taken = 0
        for message in parent.messages:
            if message.bot_index is not None:
                if taken == at_turn:
                    break
                taken += 1
            # A copy: its own id, and no event ids (the branch's stream has its own turns).
            kept.append(replace(message, id=new_id(), start_event=None, complete_event=None))
        run = Run(
            topic=parent.topic,
            bots=bots,
            max_turns=min(max_turns or parent.max_turns, self.max_turns_cap),
            strategy=parent.strategy,
            messages=kept,
            owner=owner,
            policy_config=dict(parent.policy_config),
            termination=parent.termination,
            parent_id=parent.id,
            branch_turn=at_turn,
        )
        if termination.uses(run.termination, "max_cost_usd"):
            self._check_prices(run)
        return await self._start(run)

    async def say(
        self, run_id: str, content: str, author: str | None, *, caller: str, owner: str | None
    ) -> Message:
        """Add a person's message to a running run: stored now (any process may take it),
        streamed by the run's owner before the next turn, whose speaker sees it. When the
        run waits for this person (an agent of kind `human`, named by `author` or by none),
        the message is their turn, and the run goes on here."""
        if len(content) > self.max_message_chars:
            raise PayloadTooLargeError(
                f"message is {len(content)} characters; the limit is {self.max_message_chars} "
                "(MAX_MESSAGE_CHARS)"
            )
        run = await self.get(run_id, owner=owner)
        awaited = run.open_turn_bot if run.status is RunStatus.AWAITING_INPUT else None
        if awaited is not None and author in (None, run.bots[awaited].name):
            turn = Message(
                role="user",
                author=run.bots[awaited].name,
                content=content,
                bot_index=awaited,
                turn=run.turn_count,
                completed_at=utcnow(),
            )
            epoch = await self.runs.wake(run_id, turn)
            if epoch is not None:
                work = self.loop.wake(run_id, epoch, self.tasks.control)
                self.tasks.spawn(run_id, run.owner, work)
                return turn
        author = author or caller
        # The next turn sees it: the one after those under way (the run's owner restamps
        # it when it streams the message, as it alone knows which turn comes next).
        under_way = len(await self.runs.turn_records(run_id, open_only=True))
        next_turn = run.turn_count + under_way
        message = Message(role="user", author=author, content=content, turn=next_turn)
        if run.status.finished or not await self.runs.add_said(run_id, message):
            run = await self.get(run_id, owner=owner)
            raise ConflictError(f"run {run_id!r} is {run.status.value}; it takes no messages")
        return message

    async def branches(self, run_id: str) -> list[dict[str, Any]]:
        """The runs branched from this one: id and branch point, oldest first."""
        return [
            {"id": child, "branch_turn": turn} for child, turn in await self.runs.branches(run_id)
        ]

    async def page(
        self, limit: int = 50, offset: int = 0, *, owner: str | None, id_prefix: str = ""
    ) -> list[Run]:
        return await self.runs.page(limit=limit, offset=offset, owner=owner, id_prefix=id_prefix)

    async def update_bot(
        self, run_id: str, index: int, changes: dict[str, Any], *, owner: str | None
    ) -> Run:
        run = await self.get(run_id, owner=owner)
        if not 0 <= index < len(run.bots):
            raise NotFoundError(f"run {run_id!r} has no bot {index} (it has {len(run.bots)})")
        if run.status.finished:
            raise ConflictError(f"run {run_id!r} is {run.status.value}; a bot can't change now")
        if "model" in changes:
            await self._check_model(changes["model"], "model")
        if "max_tokens" in changes:
            self.check_max_tokens(changes["max_tokens"], "max_tokens")
        if "temperature" in changes:
            self._check_temperature(changes.get("model", run.bots[index].model))
        bot = replace(run.bots[index], **changes)
        await self.runs.update_bot(run_id, index, bot)
        return await self.get(run_id, owner=owner)

    async def stop(self, run_id: str, reason: str = "stopped by user", *, owner: str | None) -> Run:
        """Stop the run wherever it is generated, and whatever state it is in: here, by
        cancelling its task (first, without a read: taken even while the database is
        down, the run then ends as soon as it answers); elsewhere, by asking its owner
        through the database (it polls) and waiting for it to end; with no live owner (its
        lease lapsed, or held by this process with no task for it), by taking it over
        here, which ends it. The stop is stored, so whoever takes the run over later ends
        it too."""
        loop = asyncio.get_running_loop()
        # One deadline for the whole stop: a cancel here that is slow to land (a loaded
        # process, a log just emptied) must not be followed by a second full wait.
        deadline = loop.time() + STOP_WAIT_SECONDS
        task = self.tasks.running.get(run_id)
        if task is not None and owner in (None, self.tasks.owners.get(run_id)):
            await self.tasks.cancel(run_id, task, reason, STOP_WAIT_SECONDS)
        run = await self.get(run_id, owner=owner)
        if run.status.finished:
            if task is not None:
                return run
            raise ConflictError(f"run {run_id!r} is already {run.status.value}")
        if not await self.runs.request_stop(run_id, reason):
            run = await self.get(run_id, owner=owner)
            raise ConflictError(f"run {run_id!r} is already {run.status.value}")
        while (left := deadline - loop.time()) > 0:
            lease = await self.runs.lease_of(run_id)
            if lease is None or lease[1].finished:
                break
            if lease[1] is RunStatus.AWAITING_INPUT:  # no owner: end it here
                epoch = await self.runs.wake(run_id)
                if epoch is not None:
                    self.tasks.spawn(
                        run_id, owner, self.loop.wake(run_id, epoch, self.tasks.control)
                    )
                    await asyncio.wait({self.tasks.running[run_id]}, timeout=left)
                    break
            if await self.leases.take_over(run_id, lease[0], orphan=True):
                await asyncio.wait({self.tasks.running[run_id]}, timeout=left)
                break
            await asyncio.sleep(min(left, STOP_POLL_SECONDS / 5))
        return await self.get(run_id, owner=owner)

    async def delete(self, run_id: str, *, owner: str | None) -> None:
        """Remove the run and its transcript. A run still going on is stopped first (its
        stream ends with `done`, as for any stop), then deleted; its branches stay, their
        `parent_id` naming a run that is gone."""
        run = await self.get(run_id, owner=owner)
        if not run.status.finished:
            with contextlib.suppress(ConflictError):  # it ended meanwhile
                await self.stop(run_id, "deleted by user", owner=owner)
        await self.runs.delete(run_id)
        self.streams.forget(run_id)

    @property
    def active_count(self) -> int:
        return len(self.tasks.running)

    async def shutdown(self, grace: float) -> None:
        """Stop taking stops and runs over, then hand every active run over (`RunTasks`)."""
        await self.leases.stop()
        await self.tasks.shutdown(grace, self.resume)
        await self.streams.settle(grace)

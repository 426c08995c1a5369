"""Runs as a service: create, inspect, edit a bot, stop, export; owns the background tasks.

A run's turn loop runs in a task owned by this service, never by an HTTP connection, so
viewers may come and go. `shutdown` cancels every active run within a grace period.
Viewers join through `open_stream`, which is cheap because a thousand may join at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from symposia.domain.models import BotConfig, Run
from symposia.errors import ConflictError, InvalidInputError, NotFoundError, RateLimitedError
from symposia.events.log import EventLog
from symposia.events.replay import StoredStream, rebuild
from symposia.orchestration.run_loop import RunLoop
from symposia.providers.registry import ProviderRegistry
from symposia.services.models import ModelCatalog
from symposia.storage.failures import log_failure
from symposia.storage.repositories import RunRepository

logger = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 5.0
KNOWN_OWNERS_MAX = 4096  # owners of runs no longer live here, remembered for joins
STORED_STREAMS_MAX = 128  # finished runs' streams rebuilt from storage, kept for joins
_UNKNOWN = object()
LOCAL_PROVIDERS = frozenset({"local", "scripted"})  # they check their models themselves
DEFAULT_DEBATERS = (
    (
        "Optimist",
        "You are Optimist, a hopeful debater. Argue for the bright side of the "
        "topic in two or three sentences, and answer the last speaker directly.",
    ),
    (
        "Skeptic",
        "You are Skeptic, a careful debater. Question claims and point out risks "
        "in two or three sentences, and answer the last speaker directly.",
    ),
)


def default_bots(model: str, max_tokens: int) -> list[BotConfig]:
    """Two bots with contrasting prompts, for a request that names none."""
    return [
        BotConfig(
            name=name, model=model, system_prompt=prompt, temperature=0.7, max_tokens=max_tokens
        )
        for name, prompt in DEFAULT_DEBATERS
    ]


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
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _owners: dict[str, str | None] = field(default_factory=dict)
    _stop_reasons: dict[str, str] = field(default_factory=dict)
    # A run's owner never changes, so what was once read stays true; oldest forgotten first.
    _known_owners: dict[str, str | None] = field(default_factory=dict)
    _replays: dict[str, asyncio.Task[StoredStream]] = field(default_factory=dict)
    # A finished run's stream never changes: rebuilt once, kept for who joins next.
    _stored: dict[str, StoredStream] = field(default_factory=dict)

    def _check_max_tokens(self, value: int, field: str) -> None:
        if value > self.max_tokens_limit:
            raise InvalidInputError(
                f"{field} is {value}, above MAX_TOKENS_LIMIT ({self.max_tokens_limit})", field
            )

    async def create(
        self, topic: str, bots: list[BotConfig], max_turns: int, *, owner: str | None
    ) -> Run:
        running = sum(1 for who in self._owners.values() if who == owner)
        if running >= self.max_running_per_owner:
            raise RateLimitedError(
                f"{running} runs are already going on for you; the limit is "
                f"{self.max_running_per_owner} (MAX_CONCURRENT_RUNS_PER_PRINCIPAL): stop one "
                "or wait for one to finish",
                headers={"Retry-After": "10"},
            )
        for index, bot in enumerate(bots):
            self._check_max_tokens(bot.max_tokens, f"bots.{index}.max_tokens")
            await self._check_model(bot.model, f"bots.{index}.model")
            for position, fallback in enumerate(bot.fallbacks):
                await self._check_model(fallback, f"bots.{index}.fallbacks.{position}")
        run = Run(topic=topic, bots=bots, max_turns=min(max_turns, self.max_turns_cap), owner=owner)
        await self.runs.add(run)
        await self.log.create(run.id)
        task = asyncio.create_task(
            self.loop.execute(run.id, self._stop_reasons), name=f"run-{run.id}"
        )
        self._tasks[run.id] = task
        self._owners[run.id] = owner
        task.add_done_callback(functools.partial(self._forget, run.id))
        return run

    async def _check_model(self, full_name: str, field_name: str) -> None:
        provider, model = self.providers.resolve(full_name, field=field_name)
        if provider.name not in LOCAL_PROVIDERS:
            await self.catalog.check(provider, model, field_name)

    def _forget(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(run_id, None)
        if run_id in self._owners:
            self._remember_owner(run_id, self._owners.pop(run_id))
        self._stop_reasons.pop(run_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log_failure(logger, "run task failed", exc)

    async def get(self, run_id: str, *, owner: str | None) -> Run:
        """The run; another principal's run is "not found", never "forbidden"."""
        run = await self.runs.get(run_id)
        if run is None or (owner is not None and run.owner != owner):
            raise NotFoundError(f"run {run_id!r} not found")
        return run

    async def open_stream(self, run_id: str, *, owner: str | None) -> StoredStream | None:
        """Let `owner` watch the run's event stream; 404 unless the run is theirs.

        None when the live log has the stream; otherwise (a restart, or retention) the
        stream rebuilt from storage with the ids it had live.

        No query while the run is live here or its owner was seen lately, one small one
        otherwise: never the whole run, which pooled connections could not serve to a
        thousand viewers joining at once. Only when the live log is gone is the transcript
        read, once for all who join meanwhile, and kept a while once the run is finished.
        """
        known = self._owners.get(run_id, self._known_owners.get(run_id, _UNKNOWN))
        if known is _UNKNOWN:
            found = await self.runs.owner_of(run_id)
            if found is None:
                raise NotFoundError(f"run {run_id!r} not found")
            known = found[0]
            self._remember_owner(run_id, found[0])
        if owner is not None and known != owner:
            raise NotFoundError(f"run {run_id!r} not found")
        if await self.log.exists(run_id):
            return None
        stored = self._stored.get(run_id)
        return stored if stored is not None else await self._replay_once(run_id)

    def _remember_owner(self, run_id: str, owner: str | None) -> None:
        self._known_owners[run_id] = owner
        if len(self._known_owners) > KNOWN_OWNERS_MAX:
            del self._known_owners[next(iter(self._known_owners))]

    async def _replay_once(self, run_id: str) -> StoredStream:
        """Rebuild the stream from storage in one task that every joiner waits on; one who
        leaves meanwhile does not cancel it for the others."""
        task = self._replays.get(run_id)
        if task is None:
            task = asyncio.create_task(self._replay(run_id), name=f"replay-{run_id}")
            self._replays[run_id] = task
            task.add_done_callback(functools.partial(self._replayed, run_id))
        return await asyncio.shield(task)

    async def _replay(self, run_id: str) -> StoredStream:
        run = await self.runs.get(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id!r} not found")
        stored = rebuild(run)
        if stored.finished:
            self._stored[run_id] = stored
            if len(self._stored) > STORED_STREAMS_MAX:
                del self._stored[next(iter(self._stored))]
        return stored

    def _replayed(self, run_id: str, task: asyncio.Task[StoredStream]) -> None:
        self._replays.pop(run_id, None)
        if not task.cancelled():
            task.exception()  # each waiter got it; marked retrieved for the ones who left

    async def page(self, limit: int = 50, offset: int = 0, *, owner: str | None) -> list[Run]:
        return await self.runs.page(limit=limit, offset=offset, owner=owner)

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
            self._check_max_tokens(changes["max_tokens"], "max_tokens")
        bot = replace(run.bots[index], **changes)
        await self.runs.update_bot(run_id, index, bot)
        return await self.get(run_id, owner=owner)

    async def stop(self, run_id: str, reason: str = "stopped by user", *, owner: str | None) -> Run:
        run = await self.get(run_id, owner=owner)
        task = self._tasks.get(run_id)
        if run.status.finished or task is None:
            raise ConflictError(f"run {run_id!r} is already {run.status.value}")
        await self._cancel(run_id, task, reason, STOP_WAIT_SECONDS)
        return await self.get(run_id, owner=owner)

    async def _cancel(
        self, run_id: str, task: asyncio.Task[None], reason: str, wait: float
    ) -> None:
        self._stop_reasons.setdefault(run_id, reason)
        task.cancel()
        await asyncio.wait({task}, timeout=wait)

    @property
    def active_count(self) -> int:
        return len(self._tasks)

    async def shutdown(self, grace: float) -> None:
        """Cancel every active run, waiting up to `grace` seconds for them to record it."""
        tasks = dict(self._tasks)
        if not tasks:
            return
        logger.info("cancelling %d active runs for shutdown", len(tasks))
        await asyncio.gather(
            *(
                self._cancel(run_id, task, "server shutdown", grace)
                for run_id, task in tasks.items()
            )
        )

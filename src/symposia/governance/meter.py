"""The one seam every provider call passes through: the caller's key limits before it,
its cost and its ledger row after.

`admit` runs before the first upstream byte (in `Answer`, the one generation path):
expiry, the key's `models`, its rate limits, then the worst case reserved atomically
against its budget (a budgeted key's request without `max_tokens` is sent the most its
reservation covers, so the answer cannot outgrow it), in memory against this process's
slice of the budget (`governance.slices`). `finish` runs however the call ended: it
frees the rate-limit slot and queues the ledger row with the settlement (group
commit), so the hot path waits for neither.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from symposia.domain.models import TurnUsage, utcnow
from symposia.errors import (
    BudgetExceededError,
    InvalidInputError,
    ModelNotAllowedError,
    UnauthorizedError,
)
from symposia.governance.budgets import BudgetStore, Refused, Settlement, is_slice
from symposia.governance.call_context import CallContext, current
from symposia.governance.key_store import KeyLimitStore
from symposia.governance.ledger import UsageEntry, UsageLedger
from symposia.governance.limits import KeyLimits, model_allowed, to_nanos, to_usd
from symposia.governance.rates import KeyRates
from symposia.governance.slices import BudgetBook
from symposia.governance.usage_rows import row_of
from symposia.providers.pricing import (
    Price,
    PriceTable,
    prompt_tokens_at_most,
)
from symposia.providers.registry import ProviderRegistry

if TYPE_CHECKING:
    from symposia.providers.resilience import ModelCall

NO_CONTEXT = CallContext(None, "internal")
CLOSE_GRACE_SECONDS = 5.0
# A call's models' prices are looked up again after this long (a provider configured
# meanwhile may change what a name resolves to); within it, from memory.
PRICED_SECONDS = 1.0
PRICED_MAX = 256
logger = logging.getLogger(__name__)
# (key id or "-", model, US dollars): the spend metric.
SpendObserver = Callable[[str, str, float], None]


@dataclass(slots=True)
class Ticket:
    """An admitted call: what it holds until `finish`."""

    context: CallContext
    limits: KeyLimits | None
    rate_ticket: str
    reservation: str | None
    reserved_nanos: int
    started: float


def _request_chars(call: ModelCall) -> int:
    request = call.request
    chars = sum(len(m.content) for m in request.messages)
    chars += sum(len(c.arguments) + len(c.name) for m in request.messages for c in m.tool_calls)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + len(str(tool.parameters or ""))
    return chars


class Meter:
    def __init__(
        self,
        keys: KeyLimitStore,
        budgets: BudgetStore,
        rates: KeyRates,
        ledger: UsageLedger,
        prices: PriceTable,
        registry: ProviderRegistry,
        max_tokens_limit: int,
        on_spend: SpendObserver | None = None,
        on_refuse: Callable[[str], None] | None = None,
    ) -> None:
        self.keys = keys
        self.budgets = budgets
        self.rates = rates
        self.ledger = ledger
        self.book = BudgetBook(ledger)
        self.prices = prices
        self.registry = registry
        self.max_tokens_limit = max_tokens_limit
        self._on_spend = on_spend
        self._on_refuse = on_refuse
        self._priced: dict[tuple[str, ...], tuple[float, list[tuple[str, Price]]]] = {}

    async def limits_of(self, owner: str | None) -> KeyLimits | None:
        """The limits of the key that `owner` (a principal id) is, if it is one."""
        if owner is None or not owner.startswith("key:"):
            return None
        return await self.keys.cached(owner[4:])

    def names_of(self, model: str) -> list[str]:
        """`model` as asked and as it resolves (`gpt-4o` is `openai/gpt-4o`), and its
        route's fallbacks: every model the call may reach."""
        names = [model]
        route = self.registry.route_of(model)
        if route is not None:
            names += [route.target, *route.fallbacks]
        names.append(self.registry.canonical(model))  # itself when it does not resolve
        return list(dict.fromkeys(names))

    def check_model(self, limits: KeyLimits | None, model: str, what: str = "") -> None:
        """ModelNotAllowedError if the key may not use `model` (`what` names who asks)."""
        if limits is None or limits.models is None:
            return
        names = self.names_of(model)
        if not model_allowed(limits.models, *names):
            who = f" ({what})" if what else ""
            raise ModelNotAllowedError(
                f"model {model}{who} is not allowed for key {limits.key_id}; it may use: "
                + ", ".join(limits.models)
            )

    async def admit(self, call: ModelCall) -> Ticket:
        """Check and hold what the call may use; raises before any upstream call."""
        context = current() or NO_CONTEXT
        limits = await self.limits_of(context.owner)
        ticket = Ticket(context, limits, secrets.token_hex(8), None, 0, time.perf_counter())
        if limits is None:
            return ticket
        if limits.expired(utcnow()):
            self._refused("expired")
            raise UnauthorizedError(f"API key {limits.key_id} expired", "Bearer")
        for model in call.models:
            try:
                self.check_model(limits, model)
            except ModelNotAllowedError:
                self._refused("model_not_allowed")
                raise
        try:
            await self.rates.admit(limits, ticket.rate_ticket)
        except Exception:
            self._refused("rate")
            raise
        if limits.budgeted:
            try:
                await self._reserve(call, limits, ticket)
            except BaseException:
                await self.rates.uncount(limits, ticket.rate_ticket)
                raise
        return ticket

    async def affords(self, call: ModelCall) -> None:
        """BudgetExceededError if the caller's key could not hold `call`'s worst case
        now: asked before a run's turn is recorded, so a turn its key cannot pay for
        leaves no empty message (the call's own admission still decides)."""
        context = current() or NO_CONTEXT
        limits = await self.limits_of(context.owner)
        if limits is None or not limits.budgeted:
            return
        worst, prompt, max_tokens, prices = self._worst(call, limits)
        found = await self.book.take(limits.key_id, worst, limits.budget_period, utcnow())
        if isinstance(found, Refused):
            self._refused("budget")
            raise self._over_budget(limits, found, worst, prompt, max_tokens, prices)
        self.book.untake(limits.key_id, worst)

    async def _reserve(self, call: ModelCall, limits: KeyLimits, ticket: Ticket) -> None:
        worst, prompt, max_tokens, prices = self._worst(call, limits)
        found = await self.book.take(limits.key_id, worst, limits.budget_period, utcnow())
        if isinstance(found, Refused):
            self._refused("budget")
            raise self._over_budget(limits, found, worst, prompt, max_tokens, prices)
        ticket.reservation, ticket.reserved_nanos = found, worst

    def _worst(
        self, call: ModelCall, limits: KeyLimits
    ) -> tuple[int, int, int, list[tuple[str, Price]]]:
        """The call's worst case in nano-dollars (and the prompt, max_tokens and prices
        it is made of); an unpriced model is refused."""
        prices = self._prices_of(call, limits)
        max_tokens = call.request.max_tokens
        if max_tokens is None:  # what the reservation covers is what may be answered
            max_tokens = self.max_tokens_limit
            call.request = replace(call.request, max_tokens=max_tokens)
        prompt = prompt_tokens_at_most(_request_chars(call))
        worst = max(to_nanos(price.of(prompt, max_tokens)) for _, price in prices)
        return worst, prompt, max_tokens, prices

    def _prices_of(self, call: ModelCall, limits: KeyLimits) -> list[tuple[str, Price]]:
        """The price of every model the call may reach (remembered `PRICED_SECONDS`)."""
        models = tuple(call.models)
        now = time.monotonic()
        found = self._priced.get(models)
        if found is not None and found[0] > now:
            return found[1]
        prices: list[tuple[str, Price]] = []
        for model in models:
            for name in self.names_of(model):
                price = self.prices.price(name)
                if price is None:
                    self._refused("unpriced")
                    raise InvalidInputError(
                        f"model {model} has no price, and key {limits.key_id} has a budget: "
                        "a budgeted key uses priced models only (PRICES_FILE adds prices)",
                        "model",
                    )
                prices.append((name, price))
        if len(self._priced) >= PRICED_MAX:
            self._priced.clear()
        self._priced[models] = (now + PRICED_SECONDS, prices)
        return prices

    def _over_budget(
        self,
        limits: KeyLimits,
        found: Refused,
        worst: int,
        prompt: int,
        max_tokens: int,
        prices: list[tuple[str, Price]],
    ) -> BudgetExceededError:
        remaining = found.remaining_nanos
        dearest = max((p for _, p in prices), key=lambda p: p.of(prompt, max_tokens))
        left = to_usd(remaining) - dearest.of(prompt, 0)
        fits = max(0, math.floor(left * 1_000_000 / dearest.output)) if dearest.output else 0
        period = "" if limits.budget_period == "none" else f" this {limits.budget_period}"
        return BudgetExceededError(
            f"key {limits.key_id} has ${to_usd(remaining):.6f} of its "
            f"${to_usd(found.budget_nanos):.6f} budget left{period}; this request may cost "
            f"up to ${to_usd(worst):.6f} ({prompt} prompt tokens and max_tokens {max_tokens}); "
            f"the most max_tokens that would fit is {fits}"
        )

    def _refused(self, reason: str) -> None:
        if self._on_refuse is not None:
            self._on_refuse(reason)

    async def finish(
        self,
        ticket: Ticket,
        requested: str,
        answered: str,
        usage: TurnUsage,
        status: str,
    ) -> None:
        """The call ended (`status`): free its slot, queue its row and its settlement."""
        context, limits = ticket.context, ticket.limits
        tokens = usage.prompt_tokens + usage.completion_tokens
        if limits is not None:
            await self.rates.done(limits, ticket.rate_ticket, tokens)
        cost = self.prices.cost(answered or requested, usage)
        cost_nanos = None if cost is None else to_nanos(cost)
        key_id = context.key_id
        now = utcnow()
        settlement = None
        if limits is not None:
            returned = 0
            if is_slice(ticket.reservation):
                assert ticket.reservation is not None
                returned = self.book.settle(
                    limits.key_id, ticket.reservation, ticket.reserved_nanos, cost_nanos or 0
                )
            settlement = Settlement(
                limits.key_id,
                ticket.reservation,
                cost_nanos or 0,
                limits.budget_period,
                now,
                returned,
            )
        row = row_of(
            at=now,
            principal=context.owner,
            key_id=key_id,
            model=requested,
            provider_model=answered or None,
            surface=context.surface,
            run_id=context.run_id,
            conversation_id=context.conversation_id,
            response_id=context.response_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            estimated=usage.estimated,
            cost_nanos=cost_nanos,
            latency_ms=round((time.perf_counter() - ticket.started) * 1000, 2),
            ttft_ms=usage.time_to_first_token_ms,
            status=status,
        )
        self.ledger.add(UsageEntry(row, settlement))
        if cost and self._on_spend is not None:
            self._on_spend(key_id or "-", requested, cost)

    async def release(self, ticket: Ticket) -> None:
        """The call never started (cancelled before its first upstream byte)."""
        if ticket.limits is not None:
            await self.rates.uncount(ticket.limits, ticket.rate_ticket)
        if ticket.reservation is not None and ticket.limits is not None:
            returned = self.book.settle(
                ticket.limits.key_id, ticket.reservation, ticket.reserved_nanos, 0
            )
            self.ledger.add(
                UsageEntry(
                    None,
                    Settlement(
                        ticket.limits.key_id,
                        ticket.reservation,
                        0,
                        ticket.limits.budget_period,
                        utcnow(),
                        returned,
                    ),
                )
            )

    async def renew(self) -> int:
        """Keep this process's reservations and open calls leased (its heartbeat)."""
        renewed = await self.budgets.renew()
        self.book.keep_only(self.budgets.held)
        await self.rates.renew()
        return renewed

    async def sweep(self) -> int:
        return await self.budgets.sweep()

    async def close(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Write what the ledger holds and give back the slices (for at most `grace`
        seconds: a database that is down must not hold the shutdown), then close the
        rate counters."""
        try:
            await asyncio.wait_for(self.ledger.flush(), grace)
        except TimeoutError:
            logger.warning("usage ledger: rows still queued at shutdown are not written")
        await self.rates.close()

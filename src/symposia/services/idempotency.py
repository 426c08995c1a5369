"""`Idempotency-Key`: a retried request creates nothing twice.

The header Stripe's and OpenAI's clients send. The first request of a principal with a key
claims it in the database (`idempotency_keys`; its primary key makes two workers racing
resolve to one) and, once it succeeded, stores its answer there. A retry with the same key
and the same request (route and body) gets that answer again, marked
`Idempotent-Replayed: true`; a different request with the key is 422
`idempotency_key_reused`; one that comes while the first is still in flight is 409
`idempotency_key_in_flight` (with `Retry-After`), never a second execution. A request that
failed stores nothing and lets its key go: it created nothing, so a retry runs anew. Keys
are forgotten after `TTL_SECONDS`. Requests without the header pay nothing for this.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from symposia.aio import complete
from symposia.errors import ConflictError, InvalidInputError
from symposia.storage.failures import log_failure
from symposia.storage.sql_idempotency import SqlIdempotencyKeys

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_CHARS = 255
TTL_SECONDS = 86_400.0
# A claim with no answer after this long belongs to a request that died (a process killed
# mid-request): a retry may run. Longer than any request lasts (a model's whole answer).
ABANDONED_SECONDS = 900.0
RETRY_IN_FLIGHT_SECONDS = "1"

Outcome = tuple[int, dict[str, Any]]


class IdempotencyKeyReusedError(InvalidInputError):
    code = "idempotency_key_reused"


class IdempotencyKeyInFlightError(ConflictError):
    code = "idempotency_key_in_flight"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool

    @property
    def headers(self) -> dict[str, str]:
        return {REPLAYED_HEADER: "true"} if self.replayed else {}


def fingerprint(route: str, body: Any) -> str:
    """The request as a SHA-256: its route and its body as JSON, keys sorted (so the same
    fields in another order are the same request)."""
    return hashlib.sha256(orjson.dumps([route, body], option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > KEY_MAX_CHARS or not key.isprintable():
        raise InvalidInputError(
            f"{HEADER} must be 1 to {KEY_MAX_CHARS} printable characters", HEADER
        )


@dataclass(slots=True)
class IdempotencyKeys:
    store: SqlIdempotencyKeys
    ttl: float = TTL_SECONDS
    abandoned_after: float = ABANDONED_SECONDS

    async def answer(
        self,
        key: str | None,
        principal: str,
        route: str,
        body: Any,
        make: Callable[[], Awaitable[Outcome]],
        *,
        deferred: bool = False,
    ) -> Answer:
        """`make`'s answer, once per key: the first request runs it, a retry gets what it
        answered (see the module docstring). `deferred`: the answer is known only later
        (a stream's end), and stored then with `settle`."""
        if key is None:
            status, made = await make()
            return Answer(status, made, replayed=False)
        check_key(key)
        request = fingerprint(route, body)
        found = await self.store.claim(
            principal, key, route, request, self.ttl, self.abandoned_after
        )
        if found is not None:
            if (found.route, found.fingerprint) != (route, request):
                raise IdempotencyKeyReusedError(
                    f"this {HEADER} was used for another request (a different route or "
                    "body) in the last 24 hours: use a new key for a new request",
                    HEADER,
                )
            if found.status is None or found.response is None:
                raise IdempotencyKeyInFlightError(
                    f"a request with this {HEADER} is still being answered: retry shortly",
                    headers={"Retry-After": RETRY_IN_FLIGHT_SECONDS},
                )
            return Answer(found.status, found.response, replayed=True)
        try:
            status, made = await make()
        except BaseException:
            try:
                await complete(self.store.release(principal, key))
            except Exception as exc:  # the key is freed once abandoned, then
                log_failure(logger, "could not release an idempotency key", exc)
            raise
        if not deferred:
            await complete(self.store.record(principal, key, status, made))
        return Answer(status, made, replayed=False)

    async def settle(self, principal: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Store the answer of a claimed request that finishes later than `make` (a stream
        whose whole answer is known only at its end)."""
        await complete(self.store.record(principal, key, status, body))

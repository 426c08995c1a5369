"""A run's dependencies failing: which failures are outages, and waiting them out.

A store or log that cannot be reached (a refused or dropped connection, a pool or lock
that stays taken, the Redis log answering 503) is not the run's fault: its writer pauses
under its lease and retries with backoff, rather than ending the run with an error that
the row, which could not be written, would never say. Anything else is a bug or bad
input, and ends the run as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from symposia.errors import FencedOutError, UnavailableError
from symposia.events.log import StreamNotFoundError
from symposia.storage.failures import is_busy, is_connection_failure, summary

logger = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database or the event log could not be reached (a pause and
    a retry may cure it), rather than refused what was asked. A run's own stream gone from
    the log (a Redis restarted empty) is one too: once the log answers, the stream is put
    back from storage and the run goes on."""
    if isinstance(exc, FencedOutError):
        return False
    return (
        isinstance(exc, UnavailableError | StreamNotFoundError)
        or is_connection_failure(exc)
        or is_busy(exc)
    )


def which(exc: BaseException) -> str:
    """The dependency `exc` came from, as a run's reason names it."""
    log = isinstance(exc, UnavailableError | StreamNotFoundError)
    return "the event log" if log else "the database"


async def until_reachable(
    probe: Callable[[], Awaitable[object]], deadline: float | None, what: str
) -> bool:
    """Call `probe` with exponential backoff until it succeeds (True) or the loop's clock
    passes `deadline` (False; None waits for as long as it takes). A failure that is not
    an outage is raised: the probe found something else wrong."""
    loop = asyncio.get_running_loop()
    delay = BACKOFF_FIRST_SECONDS
    while True:
        try:
            await probe()
            return True
        except Exception as exc:
            if not is_outage(exc):
                raise
            logger.info("%s still unreachable: %s", what, summary(exc))
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(delay, left))
        else:
            await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_SECONDS)

"""A provider's HTTP connection pool, spoken to directly with aiohttp.

The OpenAI wire protocol is the contract, not its SDK: on the hot path the SDK spent about
0.9 ms of CPU per request before a byte left (options, headers, an httpx request wrapped
around an aiohttp one). This is what remains of it: one long-lived session per provider
(kept-alive connections), the base URL, the bearer key and the configured headers, the
SDK's backstop timeouts, and aiohttp's faults sorted into the failures the retry policy
reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from symposia import __version__
from symposia.errors import ProviderFailure
from symposia.providers.failures import connection_failure, stream_failure, timeout_failure
from symposia.providers.sdk_adapter import SDK_TIMEOUT_SECONDS

OPENAI_BASE_URL = "https://api.openai.com/v1"
# What the SDK's aiohttp transport allowed: a gateway holds many streams at once.
MAX_CONNECTIONS = 1000
KEEPALIVE_SECONDS = 5.0
# An upstream's error body is read for its message, never more than this.
ERROR_BODY_LIMIT = 64 * 1024


class ProviderHttp:
    """One provider's base URL, credentials and pooled connections.

    The session is made on first use, in the running loop (an aiohttp session belongs to
    the loop it was made in; a new loop, as each test has, gets a new session), and closed
    by `close` at shutdown.
    """

    __slots__ = ("_headers", "_loop", "_session", "_timeout", "base_url")

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        headers: Mapping[str, str],
        timeout: float = SDK_TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = URL(base_url or OPENAI_BASE_URL)
        # As the SDK sent them: its defaults, the bearer key, then the configured headers,
        # which may replace any of them.
        self._headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"Symposia/{__version__}",
            **({"Authorization": f"Bearer {api_key}"} if api_key else {}),
            **headers,
        }
        # Backstops only, as in the SDK: the retry policy's first-token and idle
        # timeouts govern a call.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def url(self, path: str) -> URL:
        """`path` under the base URL, which keeps its own path and query."""
        return self.base_url.with_path(self.base_url.path.rstrip("/") + path, keep_query=True)

    @property
    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS
            )
            proxy, proxy_auth = _env_proxy(self.base_url)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self._timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _env_proxy(url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy that HTTP(S)_PROXY and NO_PROXY name for `url`, as the SDK honoured them.

    Looked up once: aiohttp's `trust_env` looks up the proxy and `.netrc` in a worker
    thread on every request, two thread hops whose GIL hand-overs cost the event loop
    more than the request itself."""
    try:
        return get_env_proxy_for_url(url)
    except LookupError:
        return None, None


async def error_body(response: aiohttp.ClientResponse) -> bytes:
    """The start of an error answer's body (enough for its message), the rest left unread."""
    body = b""
    while len(body) < ERROR_BODY_LIMIT:
        chunk = await response.content.read(ERROR_BODY_LIMIT - len(body))
        if not chunk:
            break
        body += chunk
    return body


def transport_failure(
    exc: BaseException, provider: str, model: str, *, answering: bool
) -> ProviderFailure:
    """An aiohttp fault as a failure: `answering` says whether the response had begun.

    Before it, the upstream could not be reached (`connection_error`); after it, the stream
    broke (`stream_error`); both are retried while no text was shown. A timeout is one of
    the backstops above (the retry policy's own timeouts fire first)."""
    if isinstance(exc, TimeoutError):
        what = "token" if answering else "answer"
        return timeout_failure(provider, model, what, SDK_TIMEOUT_SECONDS)
    detail = str(exc) or type(exc).__name__
    if answering:
        return stream_failure(provider, model, detail)
    return connection_failure(provider, model, detail)


# Every fault aiohttp raises for a request, a connection or a payload.
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)

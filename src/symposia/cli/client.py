"""The HTTP side of the client commands (`debate`, `chat`, `runs`): one httpx client per
command, the server's refusals turned into one-line messages, and event streams followed
across dropped connections with `Last-Event-ID`.

    CliError               a failure told in one line; the command exits non-zero
    ├── ServerUnreachableError   nothing answers at the server's address
    └── ApiError                 the server answered 4xx/5xx
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from symposia.cli.config import local_server_url, settings_or_exit
from symposia.cli.parsing import Commands

if TYPE_CHECKING:  # imported where used: `symposia serve` loads this module too
    import httpx

API_KEY_ENV = "SYMPOSIA_API_KEY"
TIMEOUT: dict[str, Any] = {"timeout": 30.0, "connect": 5.0}  # as httpx.Timeout's arguments
# A stream hears a heartbeat every SSE_HEARTBEAT_SECONDS (15 s by default): a minute of
# silence is a dead connection, worth reconnecting.
STREAM_TIMEOUT: dict[str, Any] = {**TIMEOUT, "read": 60.0}
RECONNECT_DELAY = 0.5  # seconds between attempts to pick a stream up again
RECONNECT_SECONDS = 30.0  # how long a lost stream is retried before giving up
HOW_TO_START = "start one with `symposia serve` (or `make run` in a checkout), or pass --server URL"


class CliError(Exception):
    """A failure the user is told about in one line, with no traceback."""

    exit_code = 1


class ServerUnreachableError(CliError):
    pass


class ApiError(CliError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field  # the request field the server named, if any


def refusal(response: httpx.Response) -> ApiError:
    """The `ApiError` for a response of status 400 or above."""
    try:
        body = response.json()
    except ValueError:
        body = None
    field = body.get("field") if isinstance(body, dict) else None
    return ApiError(response.status_code, describe(response), field if field else None)


def _server_message(response: httpx.Response) -> tuple[str, str]:
    """The error's code and message from our JSON body, FastAPI's `detail`, or the text."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text.strip()[:200]
    if not isinstance(body, dict):
        return "", str(body)[:200]
    return str(body.get("code", "")), str(body.get("message") or body.get("detail") or body)


def describe(response: httpx.Response) -> str:
    """One line a person can act on, for a response of status 400 or above."""
    code, message = _server_message(response)
    status, path = response.status_code, response.request.url.path
    if status == 401:
        return (
            f"the server wants credentials ({message}): pass --api-key KEY or set "
            f"{API_KEY_ENV} (a key comes from `symposia keys create --name NAME` on the server)"
        )
    if status == 404 and message == "Not Found":  # no route: an older server
        return f"this server has no {path} (it may be an older version of Symposia)"
    if status == 404:
        return f"not found: {message}"
    if status == 422:
        return f"the server refused the request: {message}"
    return f"the server answered {status}{f' {code}' if code else ''}: {message}"


@dataclass
class Api:
    """One server, one API key, one connection pool."""

    base_url: str
    api_key: str | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        import httpx

        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        timeout = httpx.Timeout(**TIMEOUT)
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def unreachable(self, exc: httpx.TransportError) -> ServerUnreachableError:
        reason = str(exc) or type(exc).__name__
        return ServerUnreachableError(
            f"no Symposia server answers at {self.base_url} ({reason}): {HOW_TO_START}"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response, of status below 400; else an `ApiError` saying why."""
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise CliError(f"the server at {self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code >= 400:
            raise refusal(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def follow(
        self, path: str, *, method: str = "GET", body: Any = None, resume: ResumePath = None
    ) -> Stream:
        return Stream(self, method, path, body, resume)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]


# Where a stream is picked up again, from the events it has seen other than tokens
# (None: it cannot be).
ResumePath = Callable[[list[Event]], str | None] | None


@dataclass
class Stream:
    """A stream read to its `done`, picked up again after a dropped connection (or a
    Ctrl-C) with `Last-Event-ID`: each event is yielded once, none is skipped."""

    api: Api
    method: str
    path: str
    body: Any
    resume: ResumePath
    last_id: int = 0
    seen: list[Event] = field(default_factory=list)  # all but the tokens: a few per turn
    finished: bool = False
    attempted: bool = False

    def events(self) -> Iterator[Event]:
        """The events not yet yielded; call again after an interrupt to go on."""
        import httpx

        given_up_at = time.monotonic() + RECONNECT_SECONDS
        while not self.finished:
            request = self._next_request()
            try:
                for event in self._read(*request):
                    given_up_at = time.monotonic() + RECONNECT_SECONDS
                    yield event
            except httpx.TransportError as exc:
                if time.monotonic() > given_up_at:
                    raise self.api.unreachable(exc) from exc
            if self.finished:
                return
            if time.monotonic() > given_up_at:  # answered, but never with anything new
                raise CliError(f"the stream {self.path} keeps ending before its `done` event")
            time.sleep(RECONNECT_DELAY)

    def _next_request(self) -> tuple[str, str, Any]:
        if not self.last_id and self.attempted and self.method != "GET":
            # Sending the body again would ask for the same thing twice.
            raise CliError("the connection was lost before the stream began; nothing was resent")
        self.attempted = True
        if not self.last_id:
            return self.method, self.path, self.body
        path = self.resume(self.seen) if self.resume else self.path
        if path is None:
            raise CliError("the connection was lost and this stream cannot be resumed")
        return "GET", path, None

    def _read(self, method: str, path: str, body: Any) -> Iterator[Event]:
        import httpx
        from httpx_sse import SSEError, connect_sse

        headers = {"Last-Event-ID": str(self.last_id)} if self.last_id else {}
        timeout = httpx.Timeout(**STREAM_TIMEOUT)
        with connect_sse(
            self.api.http, method, path, json=body, headers=headers, timeout=timeout
        ) as source:
            response = source.response
            if response.status_code >= 400:
                response.read()
                raise refusal(response)
            try:
                for sse in source.iter_sse():
                    if not sse.id.isdigit() or int(sse.id) <= self.last_id:
                        continue  # a repeat after a reconnect
                    event = Event(int(sse.id), sse.event, sse.json())
                    self.last_id = event.id
                    if event.type != "token":
                        self.seen.append(event)
                    self.finished = event.type == "done"
                    yield event
                    if self.finished:
                        return
            except SSEError as exc:
                raise CliError(f"{path} is not an event stream: {exc}") from exc


def connect(args: argparse.Namespace) -> Api:
    """The server of `--server` (default: the one `symposia serve` starts here)."""
    url = getattr(args, "server", None) or local_server_url(settings_or_exit())
    if "://" not in url:
        url = f"http://{url}"  # `--server localhost:8000`
    key = getattr(args, "api_key", None) or os.environ.get(API_KEY_ENV) or None
    return Api(url.rstrip("/"), key)


def add_server_options(parser: argparse.ArgumentParser, *, before_command: bool = False) -> None:
    """`--server` and `--api-key`, taken before the command (`symposia --server X debate`)
    as well as after it: after it they are SUPPRESS by default, so an option given before
    the command is not overwritten by the command's own default."""
    default = None if before_command else argparse.SUPPRESS
    parser.add_argument(
        "--server",
        metavar="URL",
        default=default,
        help="the server (default: http://HOST:PORT of the settings)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        default=default,
        help=f"sent as X-API-Key (default: ${API_KEY_ENV})",
    )


def client_parser(commands: Commands, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A command that talks to a server: it takes --server and --api-key."""
    parser = commands.add_parser(name, **kwargs)
    add_server_options(parser)
    parser.set_defaults(talks_to_server=True)
    return parser


ID_PREFIX_MIN = 6  # characters of an id that a command accepts in its place
FULL_ID_LENGTH = 32
LISTING_PAGE = 200  # the most a listing route gives at once
AMBIGUOUS_SHOWN = 5  # ids named when a start of an id fits several


def resolve_id(api: Api, given: str, listing: str, kind: str) -> str:
    """The whole id of the `kind` (run, conversation) whose id starts with `given`.

    Ids are 32 hex characters; a person copies the first few. Any unique prefix of
    ID_PREFIX_MIN or more characters is taken: the server's listing is asked for the ids
    starting so (`id_prefix`, one request; a server too old to filter is read page by
    page). Anything else goes to the server as it is (which says whether it knows it).
    """
    if len(given) >= FULL_ID_LENGTH or len(given) < ID_PREFIX_MIN:
        return given
    matches = _ids_starting(api, given.lower(), listing)
    if not matches:
        raise ApiError(404, f"not found: {kind} {given!r} not found (no id of yours starts so)")
    if len(matches) > 1:
        many = len(matches) > AMBIGUOUS_SHOWN
        shown = ", ".join(matches[:AMBIGUOUS_SHOWN]) + (", …" if many else "")
        count = f"more than {AMBIGUOUS_SHOWN}" if many else str(len(matches))
        raise CliError(f"{given!r} starts the ids of {count} {kind}s ({shown}): give more")
    return matches[0]


def _ids_starting(api: Api, prefix: str, listing: str) -> list[str]:
    """The ids in `listing` that start with `prefix`: up to AMBIGUOUS_SHOWN + 1 of them
    from a server that filters, all of them from one that does not."""
    if all(c in "0123456789abcdef" for c in prefix):  # an id: the server may filter
        params = {"limit": AMBIGUOUS_SHOWN + 1, "id_prefix": prefix}
        page = api.json("GET", listing, params=params)
        if page.get("id_prefix") == prefix:
            return [item["id"] for item in page["items"] if item["id"].startswith(prefix)]
    matches: list[str] = []
    offset = 0
    while True:
        page = api.json("GET", listing, params={"limit": LISTING_PAGE, "offset": offset})
        items = page["items"]
        matches += [item["id"] for item in items if item["id"].startswith(prefix)]
        if len(items) < LISTING_PAGE:
            return matches
        offset += LISTING_PAGE

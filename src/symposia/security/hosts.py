"""Which host names this server answers to, and which page origins it trusts (DNS rebinding).

A page on `evil.example` whose name is made to resolve to 127.0.0.1 talks to this server
as its own origin: the browser sends `Host: evil.example`, cookies and CORS do not come into
it, and on an open server it could read and start anything. So requests (HTTP and
WebSocket) whose `Host` is not an allowed name are refused with 400 before anything else
runs, and a browser's `Origin` is checked against the configured origins, never the Host.

`AllowedHosts` is pure ASGI: per request one scan of the headers and one set lookup.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from symposia.settings import Settings

MAX_CACHED = 256
REFUSED = b"this server does not answer to that host name (set ALLOWED_HOSTS to serve it)\n"


def host_name(value: str) -> str:
    """The name of a `Host` header or an origin's netloc, without its port, lower-case;
    an IPv6 address keeps its brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value if end < 0 else value[: end + 1]
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class HostPolicy:
    """Allowed names from the settings (`Settings.allowed_host_names`): None allows any."""

    def __init__(self, settings: Settings) -> None:
        self.names = settings.allowed_host_names
        # Beyond loopback with ALLOWED_HOSTS unset, any IP address is allowed too: a
        # rebinding page always has a domain name, so an address literal is this server.
        self.any_ip = not settings.allowed_hosts and not settings.host_is_loopback
        self._verdicts: dict[bytes, bool] = {}

    def allows(self, name: str) -> bool:
        return self.names is None or name in self.names or (self.any_ip and _is_ip(name))

    def allows_header(self, raw: bytes) -> bool:
        verdict = self._verdicts.get(raw)
        if verdict is None:
            verdict = self.allows(host_name(raw.decode("latin-1")))
            if len(self._verdicts) < MAX_CACHED:
                self._verdicts[raw] = verdict
        return verdict

    def origin_allowed(self, origin: str, cors_origins: list[str], host: str) -> bool:
        """A browser page's origin: a CORS_ORIGINS entry, or an origin on an allowed host
        name. With ALLOWED_HOSTS=* (any name) only the request's own host counts, so a
        page of another site still cannot ride a visitor's cookie."""
        if origin in cors_origins:
            return True
        netloc = urlsplit(origin).netloc
        if self.names is None:
            return bool(netloc) and netloc.lower() == host.lower()
        return bool(netloc) and self.allows(host_name(netloc))


class AllowedHosts:
    """400 (a plain-text line) for an HTTP request or a WebSocket handshake whose `Host`
    is not allowed; a request without a Host (HTTP/1.0, not a browser) passes."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self._app = app
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or self._policy.names is None:
            await self._app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"host":
                if not self._policy.allows_header(value):
                    await _refuse(scope, send)
                    return
                break
        await self._app(scope, receive, send)


async def _refuse(scope: Scope, send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(REFUSED)).encode("ascii")),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": REFUSED})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 400, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": REFUSED})
    else:  # a server without the denial extension answers 403
        await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})

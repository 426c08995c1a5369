"""Which URLs a client may make this server connect to (server-side request forgery).

A client-given URL is refused unless it starts with one of the operator's prefixes
(`MCP_ALLOWED_URLS`), matched by scheme, host, port and then path, never as plain text
(`https://mcp.example.com` does not let `https://mcp.example.com.evil.test` through). A
prefix may be a scheme alone (`https://`: any host), but then an address that is not
public (loopback, private, link-local, reserved, multicast; the host's every DNS answer
is checked) is still refused: only a prefix naming that very host lets one through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from symposia.errors import InvalidInputError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class UrlPrefix:
    """One allowed prefix: a scheme, and when it names one, a host, port and path."""

    scheme: str
    host: str | None = None
    port: int | None = None
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> UrlPrefix:
        parts = urlsplit(text.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"{text!r} is not an http:// or https:// URL prefix")
        if not parts.hostname:
            return cls(scheme)
        port = parts.port or DEFAULT_PORTS[scheme]
        return cls(scheme, parts.hostname.lower(), port, parts.path)

    def covers(self, scheme: str, host: str, port: int, path: str) -> bool:
        if scheme != self.scheme:
            return False
        if self.host is None:
            return True
        if (host, port) != (self.host, self.port):
            return False
        prefix = self.path
        return not prefix or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def parse_prefixes(value: str | None) -> tuple[UrlPrefix, ...]:
    """MCP_ALLOWED_URLS: a comma list of prefixes (empty: none)."""
    return tuple(UrlPrefix.parse(item) for item in (value or "").split(",") if item.strip())


def public(address: Address) -> bool:
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


async def check_url(url: str, prefixes: tuple[UrlPrefix, ...], field: str) -> None:
    """Refuse `url` (a 400 naming `field` on the OpenAI surface) unless allowed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or port == -1 or parts.username is not None:
        raise InvalidInputError("must be an http:// or https:// URL with a host", field)
    port = port or DEFAULT_PORTS[scheme]
    path = parts.path or "/"
    matches = [p for p in prefixes if p.covers(scheme, host, port, path)]
    if not matches:
        raise InvalidInputError(
            "this server does not connect to that URL: its operator lists the allowed ones "
            "in MCP_ALLOWED_URLS",
            field,
        )
    if any(p.host is not None for p in matches):
        return  # the operator named this very host
    addresses = await _addresses(host, port)
    if not addresses:
        raise InvalidInputError(f"the host {host!r} cannot be resolved", field)
    for address in addresses:
        if not public(address):
            raise InvalidInputError(
                "this server does not connect to loopback, private or link-local addresses "
                "unless its operator lists the host in MCP_ALLOWED_URLS",
                field,
            )


async def _addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]

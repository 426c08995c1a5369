"""The settings as the commands read them: the server's own commands stop on bad settings;
the client commands only take the server's address from them."""

from __future__ import annotations

import sys

from symposia.settings import Settings, SettingsError, load_settings

# A server listening on every interface is reached on loopback from its own machine.
_ANY_HOSTS = frozenset({"0.0.0.0", "::", ""})


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"symposia: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def local_server_url(settings: Settings) -> str:
    """`http://HOST:PORT` of the server these settings start (`symposia serve`)."""
    host = "127.0.0.1" if settings.host in _ANY_HOSTS else settings.host
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{settings.port}"

"""The process's file descriptors: raised to the hard limit at start, and the share of
them client connections may take (MAX_CONNECTIONS unset)."""

from __future__ import annotations

import resource

RESERVED_DESCRIPTORS = 64  # files, the database pool, Redis, logs


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard one where the OS allows; the soft
    limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # macOS refuses above OPEN_MAX
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_max_connections(descriptors: int) -> int:
    """Half the descriptors left after the reserve: a `/v1` request in flight holds a
    second one, to its model provider."""
    return max(16, (descriptors - RESERVED_DESCRIPTORS) // 2)

"""The request head is bounded before the app runs: `symposia serve` itself, over raw sockets.

An 8 MB header and 20,000 headers were once read whole before authentication; now they
are answered 431 (or the connection is cut) at once, and the server's memory stays put.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.live import free_port, serve_process, wait_until_healthy

CHUNK = 64 * 1024


@dataclass
class Served:
    port: int
    process: subprocess.Popen[bytes]

    def peak_rss_kib(self) -> int:
        return _status_kib(self.process.pid, "VmHWM")

    def reset_peak(self) -> None:
        """Linux: writing 5 to clear_refs resets the peak RSS to the current RSS."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    for name in ("DEV_MODE", "DATABASE_URL", "REDIS_URL", "MAX_HEADER_BYTES", "MAX_HEADER_COUNT"):
        env.pop(name, None)
    process = serve_process(env, tmp_path)
    try:
        await wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield Served(port, process)
    finally:
        process.kill()
        process.wait(timeout=10)


def _exchange(port: int, pieces: Iterable[bytes], requests: int = 1) -> tuple[bytes, float]:
    """Send `pieces` (stopping if the server cuts us off), then read until it closes or
    `requests` answers came; returns what was read and the seconds it all took."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
            while received.count(b"HTTP/1.1 ") < requests or not received.endswith(b"}"):
                data = sock.recv(CHUNK)
                if not data:
                    break
                received += data
        except (ConnectionResetError, BrokenPipeError):
            pass
    return received, time.monotonic() - started


def _huge_header(size: int) -> Iterable[bytes]:
    yield b"GET /api/models HTTP/1.1\r\nHost: localhost\r\nX-Big: "
    for _ in range(size // CHUNK):
        yield b"a" * CHUNK
    yield b"\r\n\r\n"


def _many_headers(count: int) -> Iterable[bytes]:
    lines = b"".join(b"X-H%d: v\r\n" % number for number in range(count))
    head = b"GET /api/models HTTP/1.1\r\nHost: localhost\r\n" + lines + b"\r\n"
    for start in range(0, len(head), CHUNK):
        yield head[start : start + CHUNK]


def _refused(answer: bytes) -> bool:
    """431, or the connection cut before any answer (a reset can overtake the 431)."""
    return answer == b"" or answer.startswith(b"HTTP/1.1 431 ")


async def test_an_8_mb_header_is_refused_at_once_and_costs_no_memory(served: Served) -> None:
    served.reset_peak()
    before = served.peak_rss_kib()
    answer, seconds = await asyncio.to_thread(_exchange, served.port, _huge_header(8 << 20))
    assert _refused(answer), answer[:200]
    assert seconds < 2
    assert served.peak_rss_kib() - before < 2048, "the server held the header in memory"


async def test_20000_headers_are_refused(served: Served) -> None:
    answer, seconds = await asyncio.to_thread(_exchange, served.port, _many_headers(20_000))
    assert _refused(answer), answer[:200]
    assert seconds < 2


async def test_101_small_headers_are_431(served: Served) -> None:
    answer, _ = await asyncio.to_thread(_exchange, served.port, _many_headers(101))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"connection: close" in answer.lower()


async def test_a_head_trickled_in_small_reads_is_counted_whole(served: Served) -> None:
    """One header that never ends, in 1 KiB sends: no single piece is large."""

    def trickle() -> Iterable[bytes]:
        yield b"GET /api/models HTTP/1.1\r\nHost: localhost\r\nCookie: "
        for _ in range(64):
            yield b"c" * 1024
            time.sleep(0.002)  # each piece its own read
        yield b"\r\n\r\n"

    answer, _ = await asyncio.to_thread(_exchange, served.port, trickle())
    assert _refused(answer), answer[:200]


async def test_large_but_sane_heads_pass_again_and_again_on_one_connection(
    served: Served,
) -> None:
    """A Bearer key, a 16 KiB cookie and 90 headers fit; each request's head counts alone."""
    cookie = b"Cookie: session=" + b"s" * 16 * 1024 + b"\r\n"
    extra = b"".join(b"X-H%d: v\r\n" % number for number in range(85))
    head = (
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer sk-"
        + b"k" * 60
        + b"\r\n"
        + cookie
        + extra
        + b"\r\n"
    )
    answer, _ = await asyncio.to_thread(_exchange, served.port, [head, head, head], 3)
    assert answer.count(b"HTTP/1.1 200 OK") == 3, answer[:300]

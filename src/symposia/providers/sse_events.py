"""A lean Server-Sent Events reader for provider streams: bytes in, JSON payloads out.

The SDKs build a model object for every chunk, which costs more CPU than everything else a
relay does per token. Adapters on the hot path take the SDK's raw response instead and
read it here: split events on blank lines (never inside a multi-byte character, since the
split is on bytes), join `data:` lines, parse with orjson.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

DONE = b"[DONE]"


class SseBatches:
    """The (event name, parsed data) pairs that each chunk completed, as one list per
    chunk: fed by `body_reads.available_chunks`, a consumer relays all that arrived at
    once. Iteration stops at `data: [DONE]`, or when the body ends; `done` then says which
    (a stream cut short by a proxy or a dying upstream ends cleanly at the HTTP level,
    without it).

    Raises `orjson.JSONDecodeError` for a data line that is not JSON. `parse` reads each
    data payload (a `TextTemplate.parse` reads a plain chunk as its text).
    """

    __slots__ = ("_chunks", "_parse", "done")

    def __init__(
        self, chunks: AsyncIterator[bytes], parse: Callable[[bytes], Any] = orjson.loads
    ) -> None:
        self._chunks = chunks
        self._parse = parse
        self.done = False

    def __aiter__(self) -> AsyncIterator[list[tuple[bytes, Any]]]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[list[tuple[bytes, Any]]]:
        buffer = b""
        parse = self._parse
        async for chunk in self._chunks:
            buffer = buffer + chunk if buffer else chunk
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            end = buffer.rfind(b"\n\n")
            if end < 0:
                continue
            complete, buffer = buffer[:end], buffer[end + 2 :]
            batch: list[tuple[bytes, Any]] = []
            for raw in complete.split(b"\n\n"):
                if raw[:6] == b"data: " and b"\n" not in raw:  # the usual shape: one data line
                    event, payload = b"", raw[6:]
                else:
                    event, data = _fields(raw)
                    if data is None:
                        continue
                    payload = data
                if payload == DONE:
                    self.done = True
                    if batch:
                        yield batch
                    return
                batch.append((event, parse(payload)))
            if batch:
                yield batch


def sse_batches(
    chunks: AsyncIterator[bytes], parse: Callable[[bytes], Any] = orjson.loads
) -> SseBatches:
    """`chunks` read as SSE batches (see `SseBatches`)."""
    return SseBatches(chunks, parse)


def _fields(raw: bytes) -> tuple[bytes, bytes | None]:
    """An event's name and its data lines joined (None without any), per the SSE spec."""
    event, data = b"", []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip()
    return event, b"\n".join(data) if data else None

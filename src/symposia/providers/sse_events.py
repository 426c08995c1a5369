"""A lean Server-Sent Events reader for provider streams: bytes in, JSON payloads out.

The SDKs build a model object for every chunk, which costs more CPU than everything else a
relay does per token. Adapters on the hot path take the SDK's raw response instead and
read it here: split events on blank lines (never inside a multi-byte character, since the
split is on bytes), join `data:` lines, parse with orjson.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

DONE = b"[DONE]"


async def sse_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[bytes, Any]]]:
    """The (event name, parsed data) pairs that each chunk completed, as one list: fed by
    `aio.read_ahead`, a consumer relays all that arrived at once. Stops at `data: [DONE]`.

    Raises `orjson.JSONDecodeError` for a data line that is not JSON.
    """
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        batch: list[tuple[bytes, Any]] = []
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            raw, buffer = buffer[:end], buffer[end + 2 :]
            event, data = b"", []
            for line in raw.split(b"\n"):
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
            if not data:
                continue
            payload = b"\n".join(data)
            if payload == DONE:
                if batch:
                    yield batch
                return
            batch.append((event, orjson.loads(payload)))
        if batch:
            yield batch

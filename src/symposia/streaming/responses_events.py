"""OpenAI's Responses API on the wire: its typed events (`domain.response_events`) as SSE
frames, beside `openai_chunks` (chat completions). `event:` is the type, `data:` the event
with its `sequence_number`: from 0, one per event of the response, whichever part of the
server writes it (the stream, its farewell at shutdown, a replay)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from typing import Any

import orjson

from symposia.domain.response_events import (
    ResponseCompleted,
    ResponseCreated,
    ResponseEvent,
    ResponseFailed,
    ResponseIncomplete,
    ending,
)
from symposia.streaming.last_chunk import LastChunk

ENDING_TYPES = (ResponseCompleted, ResponseIncomplete, ResponseFailed)


class ResponseEncoder:
    """Numbers and encodes the events of one Response."""

    __slots__ = ("_seq",)

    def __init__(self) -> None:
        self._seq = 0

    def encode(self, event: ResponseEvent) -> bytes:
        kind = event.type
        data = orjson.dumps({"type": kind, **event.fields(), "sequence_number": self._seq})
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def encode_all(self, events: Iterable[ResponseEvent]) -> bytes:
        return b"".join([self.encode(event) for event in events])

    async def stream(
        self, batches: AsyncIterator[Sequence[ResponseEvent]]
    ) -> AsyncGenerator[bytes, None]:
        """Each batch as one chunk (one socket write); the one that ends the Response
        leaves as the end of the body (`LastChunk`). Closing this closes `batches`."""
        try:
            async for batch in batches:
                if not batch:
                    continue
                data = self.encode_all(batch)
                yield LastChunk(data) if isinstance(batch[-1], ENDING_TYPES) else data
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                await aclose()


def replayed(kind: str, response: dict[str, Any]) -> bytes:
    """A streamed Response's answer again (an idempotent retry): `response.created`, then
    the event it ended with (`kind`), both carrying the Response as it ended."""
    encoder = ResponseEncoder()
    return encoder.encode(ResponseCreated(response)) + encoder.encode(ending(kind, response))


__all__ = ["ENDING_TYPES", "ResponseEncoder", "replayed"]

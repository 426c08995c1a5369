"""An aiohttp response body read as everything that arrived, in one step per wake-up.

`StreamReader.iter_any()` hands over all the buffered data too, but takes it one HTTP
chunk at a time, and after each chunk asks the connection to resume reading, which runs
the HTTP parser again on nothing. An upstream that streams one SSE event per HTTP chunk
(OpenAI and every compatible server) cost the relay that chain per token: about a seventh
of its CPU. `available_chunks` takes the whole buffer at once and resumes reading once.
And where aiohttp raises a failure (a cut) ahead of the data it still holds, this hands
over that data first: text that arrived while the relay was busy is not lost to the cut
after it, without a task reading ahead (`aio.read_ahead`) to save it.

It reads the reader's private state, as aiohttp 3.14 keeps it (the pinned version; a test
checks the two reads agree); any other reader (an empty body's, a test's) is read by
`iter_any()`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp


async def available_chunks(content: aiohttp.StreamReader) -> AsyncGenerator[bytes, None]:
    """What `content.iter_any()` yields, each step all that is buffered, and the data
    before a failure ahead of it."""
    if type(content) is not aiohttp.StreamReader:
        async for chunk in content.iter_any():
            yield chunk
        return
    while True:
        if content._buffer:
            yield _take_buffer(content)
        elif content._exception is not None:
            raise content._exception  # after the data that came before it
        elif content._eof:
            return
        else:
            await content._wait("readany")


def _take_buffer(content: aiohttp.StreamReader) -> bytes:
    """`StreamReader._read_nowait(-1)`, with one resume of reading instead of one per
    HTTP chunk (what arrives on that resume waits for the next step, as there)."""
    content._timer.assert_timeout()
    buffer = content._buffer
    if content._buffer_offset:
        buffer[0] = buffer[0][content._buffer_offset :]
        content._buffer_offset = 0
    data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
    buffer.clear()
    content._size -= len(data)
    content._cursor += len(data)
    splits = content._http_chunk_splits
    if splits:  # every HTTP chunk's end is behind the cursor now; only one at it stays
        last = splits[-1]
        splits.clear()
        if last >= content._cursor:
            splits.append(last)
    if content._size < content._low_water and (
        splits is None or len(splits) < content._low_water_chunks
    ):
        content._protocol.resume_reading()
    return data

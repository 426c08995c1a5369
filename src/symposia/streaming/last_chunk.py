"""The marker of a streamed body's last chunk."""

from __future__ import annotations


class LastChunk(bytes):
    """A body iterator's final chunk, so `RelayResponse` sends it as the end of the body:
    uvicorn writes the chunk and the terminating `0\\r\\n\\r\\n` in one system call, and the
    message makes one trip through the middleware, instead of two of each."""

    __slots__ = ()

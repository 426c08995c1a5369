"""Turn a stream of byte chunks into whole characters, holding back split multi-byte ones."""

from __future__ import annotations

import codecs


class Utf8Joiner:
    """Incremental UTF-8 decoder: `feed` returns only complete characters."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> str:
        return self._decoder.decode(chunk)

    def flush(self) -> str:
        """What is left at the end; an unfinished character becomes U+FFFD."""
        return self._decoder.decode(b"", final=True)

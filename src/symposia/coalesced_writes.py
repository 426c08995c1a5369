"""A connection's writes of one turn of the event loop, sent as one system call.

uvicorn writes the status line and headers of a response, and then each body message, to
the socket as it gets them: a relayed answer whose upstream had it all at once still left
in three writes (the head, the first chunk, the end), each a system call and a wake-up of
the client. `CoalescedWrites` holds what is written during a turn of the loop and sends it
at the turn's end (one `call_soon`), in order, in one write. Nothing waits longer than
the turn that wrote it, nor past `HOLD_BYTES` (so uvicorn's flow control still sees a
large body's backlog); closing the connection sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

HOLD_BYTES = 64 * 1024


class CoalescedWrites(asyncio.Transport):
    """A transport whose writes of one loop turn leave together (see the module); every
    other call goes to the socket's transport as it is."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= HOLD_BYTES:
            self.flush()  # the callback then finds nothing to do

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held (a no-op when nothing is)."""
        held = self._held
        if not held:
            return
        self._held, self._held_bytes = [], 0
        if self._transport.is_closing():
            return  # the peer is gone: as the socket's transport would, drop it
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

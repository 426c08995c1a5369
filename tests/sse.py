"""A small SSE reader for tests: frames as they arrive, comments (heartbeats) included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data_lines: list[str] = field(default_factory=list)
    comment: str | None = None

    @property
    def wire(self) -> Any:
        """The frame's `data`, as sent."""
        return json.loads("\n".join(self.data_lines))

    @property
    def data(self) -> Any:
        """The event's own data: a named frame's `data` less what the encoder adds for
        the seeds' clients (`type`, the event name; `role` on a run's tokens), so it
        compares with `Event.data`. Unnamed frames are as sent."""
        data = self.wire
        if self.event is None or not isinstance(data, dict) or data.get("type") != self.event:
            return data
        added = {"type", "role"} if self.event == "token" and "bot" in data else {"type"}
        return {k: v for k, v in data.items() if k not in added}

    @property
    def seq(self) -> int:
        assert self.id is not None
        return int(self.id)


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    frame = Frame()
    async for line in response.aiter_lines():
        if line == "":
            if frame.id is not None or frame.event is not None or frame.data_lines:
                yield frame
            frame = Frame()
        elif line.startswith(":"):
            yield Frame(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                frame.id = value
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data_lines.append(value)


async def collect(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
) -> list[Frame]:
    """Read event frames (not comments) until the stream ends or `stop_after` of them."""
    out: list[Frame] = []
    async with client.stream("GET", path, headers=headers or {}) as response:
        assert response.status_code == 200, await response.aread()
        async for frame in frames(response):
            if frame.comment is not None:
                continue
            out.append(frame)
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


async def chat(client: httpx.AsyncClient, **body: Any) -> list[Frame]:
    """`POST /api/chat/stream` with `body`: its event frames (not comments), to the end."""
    out: list[Frame] = []
    async with client.stream("POST", "/api/chat/stream", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for frame in frames(response):
            if frame.comment is None:
                out.append(frame)
    return out

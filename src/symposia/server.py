"""uvicorn, taught to end runs before it drains connections.

uvicorn runs the lifespan shutdown only after every connection has closed, and an SSE
connection closes only when its run ends. So on SIGTERM we stop accepting, cancel the
runs (each records `cancelled` and sends its stream a final `run_status` and `done`),
and only then let uvicorn wait for the connections, which are closing by then.
"""

from __future__ import annotations

import socket

import uvicorn

from symposia.container import Container


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, container: Container) -> None:
        super().__init__(config)
        self._container = container

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting before anything else
        await self._container.shutdown()
        await super().shutdown(sockets)

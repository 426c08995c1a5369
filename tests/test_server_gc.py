"""`symposia serve` keeps what start-up made out of the garbage collector's walks, and
walks the young generation less often."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn

from symposia.server import GC_YOUNG_THRESHOLD, GracefulServer


async def test_startup_freezes_what_it_made(monkeypatch: pytest.MonkeyPatch) -> None:
    async def started(self: uvicorn.Server, sockets: Any = None) -> None:
        self.started_app = object()  # type: ignore[attr-defined]

    monkeypatch.setattr(uvicorn.Server, "startup", started)
    server = GracefulServer(uvicorn.Config(app=None), container=None)  # type: ignore[arg-type]
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        await server.startup()
        assert gc.get_freeze_count() > 0
        assert all(o is not server for o in gc.get_objects())  # frozen, so not walked
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)

"""Model text streamed to a client never reaches the log, even at DEBUG."""

from __future__ import annotations

import logging

import httpx
import pytest

PHRASE = "a private phrase the model repeats 7f3a"


async def test_a_streamed_reply_is_not_logged_at_debug(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.post("/api/chat/stream", json={"message": PHRASE})
    assert response.status_code == 200
    assert PHRASE in response.text  # the echo model said it
    leaked = [r.name for r in caplog.records if PHRASE in r.getMessage() or PHRASE in str(r.args)]
    assert leaked == []

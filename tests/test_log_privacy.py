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


async def test_no_log_record_carries_the_prompt(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Not in a message, its arguments, nor an `extra=` field: the INFO "provider call"
    line once carried `prompt_preview`, the start of the user's prompt."""
    caplog.set_level(logging.DEBUG)
    prompt = "my private question 9c1e"
    body = {"model": "scripted/echo", "messages": [{"role": "user", "content": prompt}]}
    assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
    assert (await client.post("/api/chat/stream", json={"message": prompt})).status_code == 200
    assert any(r.getMessage() == "provider call" for r in caplog.records)
    leaked = [r.name for r in caplog.records if prompt[:12] in str(vars(r))]
    assert leaked == []

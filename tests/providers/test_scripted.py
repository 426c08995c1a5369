"""The scripted provider is registered in production too: what it keeps must stay bounded."""

from __future__ import annotations

from symposia.providers.base import ChatMessage, CompletionRequest
from symposia.providers.scripted import KEPT_REQUESTS, ScriptedProvider


async def test_only_the_latest_requests_are_kept() -> None:
    scripted = ScriptedProvider(token_delay=0.0)
    for number in range(KEPT_REQUESTS * 3):
        request = CompletionRequest(
            model="echo", messages=[ChatMessage("user", f"message {number}")], max_tokens=4
        )
        async for _ in scripted.stream(request):
            pass
    assert len(scripted.requests) == KEPT_REQUESTS
    assert scripted.requests[-1].messages[0].content == f"message {KEPT_REQUESTS * 3 - 1}"
    assert scripted.streaming == 0

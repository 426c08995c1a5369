"""Seed 002, the chat API with a provider factory: its curl (`POST /api/chat/stream`
`{"message": "Hello"}`) and `previous_response_id` chaining, as its README documents them
(docs/seeds.md): text deltas, then `done` with the response id. The same path takes the
supervisor chat's body (tests/test_seed_supervisor_chat.py); this one's stays ours."""

from __future__ import annotations

import httpx

from tests.sse import Frame, chat, frames


def _text(events: list[Frame]) -> str:
    return "".join(f.data["delta"] for f in events if f.event == "token")


async def test_its_curl_streams_deltas_then_done_with_the_response_id(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/health")).status_code == 200
    events = await chat(client, message="Hello")
    assert "Hello" in _text(events)
    done = events[-1]
    assert done.event == "done"
    assert done.wire["type"] == "done"
    assert done.data["response_id"]
    assert done.data["status"] == "completed"
    assert all(f.wire["type"] == f.event for f in events)

    follow = await chat(client, message="And again?", previous_response_id=done.data["response_id"])
    assert follow[-1].data["conversation_id"] == done.data["conversation_id"]
    assert "And again?" in _text(follow)


async def test_unnamed_form_for_onmessage_clients(client: httpx.AsyncClient) -> None:
    out: list[Frame] = []
    body = {"message": "Hello"}
    async with client.stream("POST", "/api/chat/stream?events=unnamed", json=body) as response:
        assert response.status_code == 200
        async for frame in frames(response):
            if frame.comment is None:
                out.append(frame)
    assert out
    assert all(f.event is None for f in out)
    assert out[-1].data["type"] == "done"
    assert out[-1].data["response_id"]
    deltas = "".join(f.data["delta"] for f in out if f.data["type"] == "token")
    assert "Hello" in deltas


async def test_a_bad_events_form_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/chat/stream?events=bogus", json={"message": "Hello"})
    assert response.status_code == 422

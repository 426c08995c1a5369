"""Issue 23, point 6: the smaller holes of the gateway and the streams.

`X-Symposia-Conversation` was not exposed to a page on another origin; a base URL without
`/v1` got our own 404 with no hint; the `retry:` hint was a block of its own, which
httpx-sse reads as an empty event; a resume position past the end held the stream silent
until the run ended; a person's message followed by a stop was never streamed; its `turn`
was the turn under way (so exports put it before that turn) and its author, with no
credentials configured, "loopback, no credentials configured".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from symposia.container import Container
from symposia.domain.models import Message
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from symposia.streaming.sse import RETRY_MILLISECONDS
from tests.conftest import make_settings
from tests.fakes.live import LiveServer
from tests.helpers import wait_done, wait_for_event
from tests.sse import frames

ORIGIN = "https://app.example.test"
HELLO = [{"role": "user", "content": "hello"}]
SLOW = Script(chunks=[f"w{i} " for i in range(40)], delay=0.05)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url, cors_origins=[ORIGIN])


# (a) Every X-Symposia-* header a response carries is readable from another origin ------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_page_on_another_origin_reads_the_symposia_headers(
    client: httpx.AsyncClient, stream: bool
) -> None:
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "scripted/echo", "messages": HELLO, "stream": stream},
        headers={"Origin": ORIGIN, "X-Symposia-Conversation": "new"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = response.headers["access-control-expose-headers"].lower().split(",")
    sent = {name for name in response.headers if name.startswith("x-symposia-")}
    assert sent == {"x-symposia-conversation"}
    assert sent <= {name.strip() for name in exposed}


# (b) A base URL without /v1 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "meant"),
    [
        ("POST", "/chat/completions", "POST /v1/chat/completions"),
        # (GET /models is the OpenRouter seed's own route while COMPAT_OPENROUTER_ROUTES
        # is on, the default: docs/seeds.md.)
        ("GET", "/models/scripted/echo", "GET /v1/models/scripted/echo"),
        ("POST", "/responses", "POST /v1/responses"),
        ("GET", "/chat/completions", "/v1/chat/completions"),  # the route takes POST only
        ("POST", "/api/chat/completions", "POST /api/v1/chat/completions"),
    ],
)
async def test_a_base_url_without_v1_is_told_the_path_under_v1(
    client: httpx.AsyncClient, method: str, path: str, meant: str
) -> None:
    response = await client.request(method, path, json={"model": "scripted/echo"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "not_found"
    assert f"under /v1: {meant} " in error["message"], error["message"]


async def test_an_openai_client_without_v1_raises_its_not_found_naming_v1(
    client: httpx.AsyncClient,
) -> None:
    sdk = openai.AsyncOpenAI(base_url="http://symposia.test", api_key="x", http_client=client)
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.chat.completions.create(model="scripted/echo", messages=[HELLO[0]])  # type: ignore[list-item]
    assert "POST /v1/chat/completions" in str(raised.value)


async def test_other_paths_keep_their_own_404_and_root_routes_are_left_alone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    unknown = await client.get("/nothing")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"

    async def own_models() -> dict[str, str]:
        return {"served": "here"}

    app.router.add_api_route("/responses", own_models, methods=["GET"])  # mounted later
    assert (await client.get("/responses")).json() == {"served": "here"}
    refused = await client.post("/responses")  # the root route's own 405, not a hint
    assert refused.status_code == 405
    assert "error" not in refused.json()


# (c) `retry:` rides with the first event ----------------------------------------------


@dataclass
class Sse:
    event: str
    data: str
    id: str | None
    retry: int | None


def httpx_sse_events(text: str) -> list[Sse]:
    """What httpx-sse's decoder yields for a body: one event for each block with any field
    (a block holding only `retry:` too, with empty data), comments skipped."""
    out: list[Sse] = []
    event, data, last_id, retry = "", [], None, None
    block_id: str | None = None
    for line in text.split("\n"):
        if not line:
            if event or data or block_id is not None or retry is not None:
                out.append(Sse(event or "message", "\n".join(data), last_id, retry))
            event, data, block_id, retry = "", [], None, None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            last_id = block_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return out


def assert_no_empty_event(text: str) -> None:
    events = httpx_sse_events(text)
    assert events, text
    assert all(e.data for e in events), [e for e in events if not e.data]
    assert events[0].retry == RETRY_MILLISECONDS  # the hint still comes, with the first
    assert [e.retry for e in events[1:]] == [None] * (len(events) - 1)


async def test_no_sse_surface_sends_an_empty_event(
    client: httpx.AsyncClient, container: Container
) -> None:
    created = await client.post("/api/run", json={"topic": "t", "max_turns": 1})
    run_id = created.json()["id"]
    await wait_done(container, run_id)
    run = await client.get(f"/api/stream/{run_id}")
    assert_no_empty_event(run.text)
    resumed = await client.get(f"/api/stream/{run_id}", headers={"Last-Event-ID": "2"})
    assert_no_empty_event(resumed.text)
    chat = await client.post("/api/chat/stream", json={"message": "hi"})
    assert chat.status_code == 200
    assert_no_empty_event(chat.text)
    conversation = (await client.post("/api/conversations", json={})).json()
    path = f"/api/conversations/{conversation['id']}"
    await client.post(f"{path}/messages", json={"message": "hi"})
    reply = await client.get(f"{path}/stream")
    assert_no_empty_event(reply.text)


# (d) A resume position past the end answers at once ------------------------------------


async def _first_event(base_url: str, path: str, after: int) -> Any:
    """The first event frame of `path` resumed after `after`, or None if the stream ended
    first; bounded in time, so a stream held silent fails the test."""

    async def first(response: httpx.Response) -> Any:
        async for frame in frames(response):
            if frame.comment is None:
                return frame
        return None

    async with (
        httpx.AsyncClient(base_url=base_url) as http,
        http.stream("GET", path, headers={"Last-Event-ID": str(after)}) as response,
    ):
        assert response.status_code == 200
        return await asyncio.wait_for(first(response), timeout=1.5)


async def test_a_run_resumed_past_its_end_gets_what_comes_next_at_once(
    live: LiveServer, client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", SLOW)
    bots = [{"name": "A", "model": "scripted/slow"}, {"name": "B", "model": "scripted/slow"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 2})
    run_id = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    end = await container.log.last_seq(run_id)
    frame = await _first_event(live.base_url, f"/api/stream/{run_id}", end + 1000)
    assert frame is not None
    assert frame.event == "token"
    assert frame.seq > end  # what came next, nothing twice
    await client.post(f"/api/run/{run_id}/stop")
    await wait_done(container, run_id)


async def test_a_reply_resumed_past_its_end_gets_what_comes_next_at_once(
    live: LiveServer, client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", SLOW)
    conversation = (
        await client.post("/api/conversations", json={"default_model": "scripted/slow"})
    ).json()
    path = f"/api/conversations/{conversation['id']}"
    await client.post(f"{path}/messages", json={"message": "hi"})
    stream_id, _ = await container.conversations.reply_stream(conversation["id"], owner="dev")
    await wait_for_event(container, stream_id, lambda e: e.type == "token")
    end = await container.log.last_seq(stream_id)
    frame = await _first_event(live.base_url, f"{path}/stream", end + 1000)
    assert frame is not None
    assert frame.event == "token"
    assert frame.seq > end
    await wait_done(container, stream_id)


# (e, f) A person's message: streamed before a stop, at the turn that sees it -----------


async def _run_saying(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider, **said: str
) -> str:
    """A run of slow A then B; a person speaks during A's turn (turn 0)."""
    scripted.add_script("slow", SLOW)
    bots = [{"name": "A", "model": "scripted/slow"}, {"name": "B", "model": "scripted/echo"}]
    created = await client.post("/api/run", json={"topic": "t", "bots": bots, "max_turns": 2})
    run_id: str = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    response = await client.post(f"/api/run/{run_id}/messages", json={"content": "Hm.", **said})
    assert response.status_code == 201, response.text
    assert response.json()["message"]["turn"] == 1  # turn 0 is under way: 1 sees it
    return run_id


async def test_a_person_who_speaks_then_stops_the_run_is_streamed(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    run_id = await _run_saying(client, container, scripted)
    assert (await client.post(f"/api/run/{run_id}/stop")).status_code == 200
    events = await wait_done(container, run_id)
    kinds = [e.type for e in events]
    assert "person_message" in kinds, kinds
    said = events[kinds.index("person_message")]
    assert said.data["content"] == "Hm."
    assert said.data["author"] == "you"  # DEV_MODE: not the mode's description
    assert said.data["turn"] == 1  # no turn 1 will come: it is after every turn
    assert kinds[-2:] == ["run_status", "done"]
    assert kinds.index("person_message") > kinds.index("turn_complete")
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    assert [(m["author"], m["turn"]) for m in exported["messages"]] == [("A", 0), ("you", 1)]
    # The stream rebuilt from storage has it too, at the same id.
    container.log._streams.pop(run_id)  # type: ignore[attr-defined]
    rebuilt = await client.get(f"/api/stream/{run_id}")
    assert f"id: {said.seq}\nevent: person_message\n" in rebuilt.text


async def test_a_person_message_comes_after_the_turn_it_was_said_during(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    run_id = await _run_saying(client, container, scripted, author="Ana")
    events = await wait_done(container, run_id)
    said = next(e for e in events if e.type == "person_message")
    assert said.data["turn"] == 1
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    order = [(m["author"], m["turn"]) for m in exported["messages"]]
    assert order == [("A", 0), ("Ana", 1), ("B", 1)]
    markdown = (await client.get(f"/api/export/{run_id}.md")).text
    assert markdown.index("Ana") > markdown.index("w39")  # after A's whole turn


async def test_the_streaming_owner_sets_the_turn_a_message_was_stored_with(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    """A message stored with the turn under way (a turn that ended between the reads of
    `say`, or a server of an older version): the run's owner streams it with the next."""
    run_id = await _run_saying(client, container, scripted, author="Ana")
    late = Message(role="user", author="Bo", content="Late.", turn=0)
    assert await container.runs.runs.add_said(run_id, late)
    events = await wait_done(container, run_id)
    said = {e.data["author"]: e.data["turn"] for e in events if e.type == "person_message"}
    assert said == {"Ana": 1, "Bo": 1}
    exported = (await client.get(f"/api/export/{run_id}.json")).json()
    order = [(m["author"], m["turn"]) for m in exported["messages"]]
    assert order == [("A", 0), ("Ana", 1), ("Bo", 1), ("B", 1)]

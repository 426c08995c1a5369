"""A chat reply's stop (here, from another process, over the WebSocket), regenerate with
the earlier answers kept as alternatives, and the title made from the first exchange."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.orchestration.titles import clean_title
from symposia.providers.base import CompletionRequest
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.settings import Settings
from symposia.storage.cancel_safe import finish_before_cancel
from tests.conftest import make_settings
from tests.fakes.live import LiveServer
from tests.helpers import eventually
from tests.sse import collect
from tests.test_event_log_contract import _require_redis
from tests.test_reply_streams import REDIS, _tokens_in, instance
from tests.ws import command, events_until_done, open_socket

Json = dict[str, Any]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Titles on (the tests' default is off: they count model calls)."""
    return make_settings(database_url=database_url, chat_titles=True)


WORDS = [f" w{i}" for i in range(300)]


async def _conversation(http: httpx.AsyncClient, **body: Any) -> str:
    response = await http.post("/api/conversations", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _say(http: httpx.AsyncClient, conversation_id: str, text: str) -> str:
    response = await http.post(
        f"/api/conversations/{conversation_id}/messages", json={"message": text}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _messages(http: httpx.AsyncClient, conversation_id: str) -> list[Json]:
    items: list[Json] = (await http.get(f"/api/conversations/{conversation_id}/messages")).json()[
        "items"
    ]
    return items


# Stop ------------------------------------------------------------------------------------


async def _stop_mid_reply(
    generator: Any, stopper: httpx.AsyncClient, scripted: ScriptedProvider
) -> tuple[Json, list[Any], str]:
    """Start a slow reply on `generator`, stop it through `stopper` after a few tokens."""
    # Titled: no title is asked of the model, so its only call is the reply's.
    conversation_id = await _conversation(generator.http, default_model="scripted/slow", title="t")
    question = await _say(generator.http, conversation_id, "hi")
    path = f"/api/conversations/{conversation_id}/stream"
    watching = asyncio.create_task(collect(generator.http, path))
    await _tokens_in(generator.container, f"reply-{question}", 3)
    stopped = await stopper.post(f"/api/conversations/{conversation_id}/stop")
    assert stopped.status_code == 200, stopped.text
    live = await asyncio.wait_for(watching, 10)
    return stopped.json(), live, conversation_id


async def test_stop_keeps_the_partial_text_and_ends_the_stream(
    database_url: str, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=WORDS, delay=0.02))
    async with instance(database_url, scripted) as a:
        body, live, conversation_id = await _stop_mid_reply(a, a.http, scripted)
        assert body["status"] == "cancelled"
        partial = body["message"]
        assert partial["status"] == "partial"
        assert partial["content"]
        assert "".join(WORDS).startswith(partial["content"])
        assert len(partial["content"]) < len("".join(WORDS))
        assert live[-1].event == "done"
        assert live[-1].data["status"] == "cancelled"
        assert live[-1].data["message_id"] == partial["id"]
        assert scripted.streaming == 0  # the upstream call was cancelled
        stored = await _messages(a.http, conversation_id)
        assert [m["role"] for m in stored] == ["user", "assistant"]
        assert stored[1]["content"] == partial["content"]

        again = await a.http.post(f"/api/conversations/{conversation_id}/stop")
        assert again.status_code == 409  # nothing is being generated
        assert (await a.http.post("/api/conversations/nope/stop")).status_code == 404
        # And the conversation goes on: a new message is accepted.
        assert (
            await a.http.post(
                f"/api/conversations/{conversation_id}/messages", json={"message": "go on"}
            )
        ).status_code == 201


async def test_stop_asked_on_another_process_stops_the_writer(
    database_url: str, scripted: ScriptedProvider
) -> None:
    await _require_redis()
    scripted.add_script("slow", Script(chunks=WORDS, delay=0.02))
    async with (
        instance(database_url, scripted, **REDIS) as a,
        instance(database_url, scripted, **REDIS) as b,
    ):
        body, live, _ = await _stop_mid_reply(a, b.http, scripted)
        assert body["status"] == "cancelled"
        assert body["message"]["status"] == "partial"
        assert body["message"]["content"]
        assert live[-1].data["status"] == "cancelled"
        assert sum(f.event == "token" for f in live) < len(WORDS)
        assert b.container.conversations.tasks.count == 0  # B generated nothing
        await eventually(lambda: a.container.conversations.tasks.count == 0, within=2)
        assert scripted.streaming == 0


async def test_websocket_stop_of_a_reply(
    live: LiveServer, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=WORDS, delay=0.02))
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        conversation_id = await _conversation(http, default_model="scripted/slow")
        async with open_socket(live, f"/api/ws/conversations/{conversation_id}") as ws:
            await command(ws, type="message", ref="m", body={"message": "hi"})
            await command(ws, type="subscribe", ref="s", after=0)
            await events_until_done(ws, stop_after=4)
            seen: list[Json] = []
            answer = await command(ws, seen, type="stop", ref="x")
            assert answer["type"] == "ack", answer
            assert answer["result"]["status"] == "cancelled"
            assert answer["result"]["message"]["status"] == "partial"
            again = await command(ws, type="stop", ref="y")
            assert (again["status"], again["code"]) == (409, "conflict")


# Regenerate ------------------------------------------------------------------------------


def _numbered(scripted: ScriptedProvider) -> None:
    counter = itertools.count(1)
    scripted.add_script("numbered", Script(respond=lambda request: f"answer {next(counter)}"))


async def test_regenerate_keeps_the_earlier_answer_and_can_switch_back(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    _numbered(scripted)
    conversation_id = await _conversation(client, default_model="scripted/numbered", title="t")
    base = f"/api/conversations/{conversation_id}"
    assert (await client.post(f"{base}/regenerate")).status_code == 409  # nothing yet
    await _say(client, conversation_id, "a question")
    await collect(client, f"{base}/stream")
    first = await _messages(client, conversation_id)
    assert first[1]["content"] == "answer 1"

    again = await client.post(f"{base}/regenerate", json={})
    assert again.status_code == 201, again.text
    question = again.json()
    assert question["content"] == "a question"
    assert [a["content"] for a in question["alternatives"]] == ["answer 1"]
    frames = await collect(client, f"{base}/stream")
    assert frames[-1].data["status"] == "completed"
    now = await _messages(client, conversation_id)
    assert [(m["role"], m["content"]) for m in now] == [
        ("user", "a question"),
        ("assistant", "answer 2"),
    ]
    assert now[0]["alternatives"][0]["id"] == first[1]["id"]

    # Switch back to the first answer: the second becomes the alternative.
    chosen = await client.post(f"{base}/alternatives/{first[1]['id']}")
    assert chosen.status_code == 200, chosen.text
    switched = await _messages(client, conversation_id)
    assert [m["content"] for m in switched] == ["a question", "answer 1"]
    assert switched[1]["id"] == first[1]["id"]
    assert [a["content"] for a in switched[0]["alternatives"]] == ["answer 2"]
    assert (await client.post(f"{base}/alternatives/nope")).status_code == 404
    # An export is the conversation as it reads: the answer shown, not the alternatives.
    exported = await client.get(f"/api/conversations/{conversation_id}/export.json")
    assert exported.status_code == 200, exported.text
    assert [m["content"] for m in exported.json()["messages"]] == ["a question", "answer 1"]
    # The model is sent the answer shown, not the alternatives.
    await _say(client, conversation_id, "next")
    await collect(client, f"{base}/stream")
    sent = [m.content for m in scripted.requests[-1].messages]
    assert "answer 1" in sent
    assert "answer 2" not in sent
    assert (await client.post("/api/conversations/nope/regenerate")).status_code == 404
    bad = await client.post(f"{base}/regenerate", json={"model": "nope/x"})
    assert bad.status_code in (400, 404, 422)


async def test_regenerate_is_refused_while_a_reply_is_generated(
    database_url: str, scripted: ScriptedProvider
) -> None:
    scripted.add_script("slow", Script(chunks=WORDS, delay=0.02))
    async with instance(database_url, scripted) as a:
        conversation_id = await _conversation(a.http, default_model="scripted/slow")
        question = await _say(a.http, conversation_id, "hi")
        base = f"/api/conversations/{conversation_id}"
        watching = asyncio.create_task(collect(a.http, f"{base}/stream"))
        await _tokens_in(a.container, f"reply-{question}", 2)
        refused = await a.http.post(f"{base}/regenerate")
        assert refused.status_code == 409
        assert refused.json()["code"] == "reply_in_progress"
        await a.http.post(f"{base}/stop")
        await watching
        # A stopped answer can be asked again; the partial one is kept as an alternative.
        again = await a.http.post(f"{base}/regenerate")
        assert again.status_code == 201
        assert again.json()["alternatives"][0]["status"] == "partial"


# Titles ----------------------------------------------------------------------------------


def _titling(request: CompletionRequest) -> str:
    last = request.messages[-1].content
    if "short title" in last:
        return 'Title: "Rivers of Europe."'
    return "The Danube is long."


async def test_a_new_chat_is_titled_from_its_first_exchange(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("titled", Script(respond=_titling))
    conversation_id = await _conversation(client, default_model="scripted/titled")
    base = f"/api/conversations/{conversation_id}"
    assert (await client.get(base)).json()["title"] is None
    await _say(client, conversation_id, "Which river is longest?")
    await collect(client, f"{base}/stream")

    titles: list[Any] = []

    async def titled() -> bool:
        titles.append((await client.get(base)).json()["title"])
        return titles[-1] is not None

    for _ in range(200):
        if await titled():
            break
        await asyncio.sleep(0.02)
    assert titles[-1] == "Rivers of Europe"
    asked = [r for r in scripted.requests if "short title" in r.messages[-1].content]
    assert len(asked) == 1
    assert "Which river is longest?" in asked[0].messages[-1].content
    assert "The Danube is long." in asked[0].messages[-1].content

    # A second exchange asks for no title; the person's own title is never replaced.
    await client.patch(base, json={"title": "Mine"})
    await _say(client, conversation_id, "And the shortest?")
    await collect(client, f"{base}/stream")
    await asyncio.sleep(0.2)
    assert (await client.get(base)).json()["title"] == "Mine"
    assert len([r for r in scripted.requests if "short title" in r.messages[-1].content]) == 1


async def test_a_titled_chat_keeps_its_title(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("titled", Script(respond=_titling))
    conversation_id = await _conversation(client, default_model="scripted/titled", title="Given")
    await _say(client, conversation_id, "Which river is longest?")
    await collect(client, f"/api/conversations/{conversation_id}/stream")
    await asyncio.sleep(0.2)
    assert (await client.get(f"/api/conversations/{conversation_id}")).json()["title"] == "Given"
    assert not [r for r in scripted.requests if "short title" in r.messages[-1].content]


async def test_shutdown_waits_for_a_title_being_written(
    client: httpx.AsyncClient,
    container: Container,
    scripted: ScriptedProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A title's write still under way is waited for, not only cancelled: on SQLite a write
    runs to its end past a cancel, and one left running past the engine's disposal and the
    loop's end had the driver's thread answer a closed loop."""
    scripted.add_script("titled", Script(respond=_titling))
    tasks = container.conversations.tasks
    real = tasks.conversations.set_title_if_none
    writing, written = asyncio.Event(), []

    async def write(conversation_id: str, title: str) -> None:
        await asyncio.sleep(0.3)
        written.append(await real(conversation_id, title))

    async def slow(conversation_id: str, title: str) -> None:
        writing.set()
        await finish_before_cancel(write(conversation_id, title))

    monkeypatch.setattr(tasks.conversations, "set_title_if_none", slow)
    conversation_id = await _conversation(client, default_model="scripted/titled")
    await _say(client, conversation_id, "Which river is longest?")
    await collect(client, f"/api/conversations/{conversation_id}/stream")
    await asyncio.wait_for(writing.wait(), 10)
    await tasks.shutdown(2)
    assert written == [True]


def test_titles_are_cleaned_of_what_models_add() -> None:
    assert clean_title('Title: "Rivers of Europe."\nMore text') == "Rivers of Europe"
    assert clean_title("**Cooking  pasta**") == "Cooking pasta"
    assert clean_title("   \n  ") is None
    assert clean_title(" ".join(["word"] * 20)) == " ".join(["word"] * 8)

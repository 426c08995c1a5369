"""Issue 12, the supervised chat: a conversation with a panel routes each user message to
a specialist (or the supervisor answers), shows the routing first in the stream, keeps it
with the answer, exports it, falls back as documented, and refuses what does not apply."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from symposia.container import Container
from symposia.errors import ProviderFailure
from symposia.events.replay import rebuild_reply
from symposia.providers.base import CompletionRequest
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_done
from tests.sse import chat
from tests.test_event_log_contract import _require_redis
from tests.test_reply_streams import REDIS, STALE, _tokens_in, instance

SUPERVISOR_MODEL = "scripted/router"
PANEL: dict[str, Any] = {
    "agents": [
        {
            "name": "billing",
            "description": "Invoices, refunds, payment methods.",
            "model": "scripted/ledger",
            "system_prompt": "You answer billing questions.",
            "temperature": 0.1,
        },
        {
            "name": "Tech",
            "description": "Installation, errors, configuration.",
            "model": "scripted/echo",
            "system_prompt": "You answer technical questions.",
        },
    ]
}


def _router(request: CompletionRequest) -> str:
    """A supervisor that reads the question it is shown and routes by a keyword."""
    prompt = request.messages[0].content
    question = prompt.split("The user's latest message:\n", 1)[1].split("\n\n", 1)[0]
    if "invoice" in question:
        return json.dumps({"agent": "billing", "reason": "an invoice is billing's"})
    if "hello" in question:
        return '```json\n{"agent": "supervisor", "reason": "small talk"}\n```'
    return json.dumps({"agent": "tech", "reason": "an error message"})


@pytest.fixture(autouse=True)
def _models(scripted: ScriptedProvider) -> None:
    scripted.add_script("router", Script(respond=_router))
    scripted.add_script("ledger", Script(chunks=["Your ", "refund ", "is ", "on ", "its ", "way."]))


async def _panel_conversation(client: httpx.AsyncClient, panel: dict[str, Any] = PANEL) -> str:
    created = await client.post(
        "/api/conversations",
        json={"default_model": SUPERVISOR_MODEL, "system_prompt": "Be brief.", "panel": panel},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_each_message_goes_to_the_specialist_the_supervisor_picks(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    conversation_id = await _panel_conversation(client)
    frames = await chat(client, conversation_id=conversation_id, message="my invoice is wrong")
    assert [f.event for f in frames[:2]] == ["routing", "turn_start"]
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert frames[0].data == {
        "agent": "billing",
        "reason": "an invoice is billing's",
        "attempts": 1,
        "fallback": False,
        "model": SUPERVISOR_MODEL,
    }
    assert frames[1].data["name"] == "billing"
    assert frames[1].data["model"] == "scripted/ledger"
    tokens = [f.data for f in frames if f.event == "token"]
    assert {t["name"] for t in tokens} == {"billing"}
    assert "".join(t["delta"] for t in tokens) == "Your refund is on its way."
    assert frames[-1].event == "done"
    assert frames[-1].data["status"] == "completed"
    # The specialist answered with its own system prompt and temperature.
    asked = next(r for r in scripted.requests if r.model == "ledger")
    assert asked.messages[0].role == "system"
    assert asked.messages[0].content == "You answer billing questions."
    assert asked.messages[-1].content == "my invoice is wrong"
    assert asked.temperature == 0.1
    # The supervisor saw the specialists and the question.
    routed = next(r for r in scripted.requests if r.model == "router")
    assert routed.response_format is not None  # the answer's schema, names as an enum
    assert routed.response_format.schema is not None
    agent_schema = routed.response_format.schema["properties"]["agent"]
    assert agent_schema == {"enum": ["billing", "Tech", "supervisor"]}
    shown = routed.messages[0].content
    assert "- billing: Invoices, refunds, payment methods." in shown
    assert "- Tech: Installation, errors, configuration." in shown

    second = await chat(client, conversation_id=conversation_id, message="error 42 on start")
    assert second[0].data["agent"] == "Tech"  # spelled as the agent is, whatever the case
    assert second[1].data["model"] == "scripted/echo"
    echo = next(r for r in reversed(scripted.requests) if r.model == "echo")
    assert echo.messages[0].content == "You answer technical questions."
    # The earlier exchange is in the specialist's history.
    assert [m.content for m in echo.messages[1:3]] == [
        "my invoice is wrong",
        "Your refund is on its way.",
    ]

    messages = (await client.get(f"/api/conversations/{conversation_id}/messages")).json()
    answers = [m for m in messages["items"] if m["role"] == "assistant"]
    assert [(m["author"], m["model"]) for m in answers] == [
        ("billing", "scripted/ledger"),
        ("Tech", "scripted/echo"),
    ]
    assert answers[0]["routing"]["reason"] == "an invoice is billing's"
    assert all("routing" not in m for m in messages["items"] if m["role"] == "user")

    exported = (await client.get(f"/api/conversations/{conversation_id}/export.json")).json()
    assert exported["panel"]["agents"][0]["name"] == "billing"
    assert exported["panel"]["fallback"] == "supervisor"
    assert [m.get("routing", {}).get("agent") for m in exported["messages"]] == [
        None,
        "billing",
        None,
        "Tech",
    ]


async def test_the_supervisor_answers_itself_when_it_says_so(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("router", Script(respond=_router))
    frames = await chat(client, message="hello there", model=SUPERVISOR_MODEL, panel=PANEL)
    routing = frames[0].data
    assert (routing["agent"], routing["reason"]) == ("supervisor", "small talk")
    assert frames[1].data == {**frames[1].data, "name": "supervisor", "model": SUPERVISOR_MODEL}
    conversation_id = frames[-1].data["conversation_id"]
    conversation = (await client.get(f"/api/conversations/{conversation_id}")).json()
    assert conversation["default_model"] == SUPERVISOR_MODEL
    assert len(conversation["panel"]["agents"]) == 2


async def test_garbage_answers_fall_back_after_the_attempts(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("router", Script(chunks=["I", " think", " billing?"]))
    panel = {**PANEL, "max_attempts": 2, "fallback": "TECH"}
    conversation_id = await _panel_conversation(client, panel)
    conversation = (await client.get(f"/api/conversations/{conversation_id}")).json()
    assert conversation["panel"]["fallback"] == "Tech"  # stored as the agent is spelled
    frames = await chat(client, conversation_id=conversation_id, message="my invoice")
    routing = frames[0].data
    assert routing["agent"] == "Tech"
    assert routing["fallback"] is True
    assert routing["attempts"] == 2
    assert "not a JSON object" in routing["reason"]
    asked = [r for r in scripted.requests if r.model == "router"]
    assert len(asked) == 2
    # The second attempt was told what was wrong with the first.
    assert asked[1].messages[1].content == "I think billing?"
    assert "cannot be used" in asked[1].messages[2].content
    assert frames[-1].data["status"] == "completed"


async def test_a_failing_supervisor_falls_back_and_says_why(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("router", Script(chunks=["x"], fail_after=0))
    conversation_id = await _panel_conversation(client, {**PANEL, "fallback": "billing"})
    frames = await chat(client, conversation_id=conversation_id, message="anything")
    routing = frames[0].data
    assert routing["agent"] == "billing"
    assert routing["fallback"] is True
    assert routing["error"] == "the scripted model failed on purpose"
    assert frames[-1].data["status"] == "completed"


async def test_a_failing_specialist_is_an_error_event_with_a_suggestion(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    failure = ProviderFailure(
        code="provider_unavailable",
        message="the model is down",
        provider="scripted",
        model="ledger",
        status=503,
        retryable=False,
        suggestion="try again in a minute",
    )
    scripted.add_script("ledger", Script(chunks=["a"], fail_after=0, failure=failure))
    conversation_id = await _panel_conversation(client)
    frames = await chat(client, conversation_id=conversation_id, message="invoice?")
    assert [f.event for f in frames] == ["routing", "turn_start", "error", "turn_complete", "done"]
    assert frames[2].data["suggestion"] == "try again in a minute"
    assert frames[-1].data["status"] == "error"


async def test_a_finished_reply_rebuilt_from_storage_has_the_same_ids(
    client: httpx.AsyncClient, container: Container
) -> None:
    conversation_id = await _panel_conversation(client)
    live = await chat(client, conversation_id=conversation_id, message="invoice 7")
    question = live[1].data["in_reply_to"]
    reply = await container.conversations.replies.get(question)
    assert reply is not None
    assert reply.routing is not None
    rebuilt = rebuild_reply(reply).events
    by_id = {f.seq: f for f in live}
    for event in rebuilt:
        if event.type != "snapshot":
            assert by_id[event.seq].event == event.type
            if event.type in {"routing", "turn_start", "done"}:
                assert by_id[event.seq].data == event.data
    assert [e.type for e in rebuilt][:2] == ["routing", "turn_start"]
    assert rebuilt[-1].seq == live[-1].seq


async def test_a_panel_can_be_set_changed_and_removed(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/conversations", json={"default_model": SUPERVISOR_MODEL})
    path = f"/api/conversations/{created.json()['id']}"
    assert created.json()["panel"] is None
    set_ = await client.patch(path, json={"panel": PANEL})
    assert set_.status_code == 200, set_.text
    assert [a["name"] for a in set_.json()["panel"]["agents"]] == ["billing", "Tech"]
    frames = await chat(client, conversation_id=created.json()["id"], message="invoice")
    assert frames[0].event == "routing"
    removed = await client.patch(path, json={"panel": None})
    assert removed.json()["panel"] is None
    frames = await chat(client, conversation_id=created.json()["id"], message="invoice")
    assert frames[0].event == "turn_start"
    assert frames[0].data["name"] == "assistant"


@pytest.mark.parametrize(
    ("panel", "field"),
    [
        ({"agents": [PANEL["agents"][0], {**PANEL["agents"][1], "name": "BILLING"}]}, "name"),
        ({"agents": [{**PANEL["agents"][0], "name": "Supervisor"}]}, "name"),
        ({"agents": [{**PANEL["agents"][0], "model": "scripted/nope"}]}, "model"),
        ({**PANEL, "fallback": "nobody"}, "fallback"),
        ({**PANEL, "prompt": "Route {question} to {someone}"}, "prompt"),
        ({**PANEL, "prompt": "no question here: {agents}"}, "prompt"),
        ({"agents": [PANEL["agents"][0]] * 9}, "agents"),
        ({"agents": []}, "agents"),
        ({**PANEL, "max_attempts": 0}, "max_attempts"),
        ({"agents": [{"name": "x", "model": "scripted/echo"}]}, "description"),
    ],
)
async def test_a_bad_panel_is_a_422_naming_the_field(
    client: httpx.AsyncClient, panel: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/conversations", json={"default_model": SUPERVISOR_MODEL, "panel": panel}
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    listed = (await client.get("/api/conversations")).json()["items"]
    assert listed == []  # nothing was created


async def test_what_does_not_apply_to_a_panel_is_refused(client: httpx.AsyncClient) -> None:
    conversation_id = await _panel_conversation(client)
    path = f"/api/conversations/{conversation_id}"
    asked = {"message": "hi", "model": "scripted/echo"}
    override = await client.post(f"{path}/messages", json=asked)
    assert override.status_code == 422
    assert "panel" in override.json()["message"]
    chat = await client.post(
        "/api/chat/stream",
        json={"conversation_id": conversation_id, "message": "hi", "panel": PANEL},
    )
    assert chat.status_code == 422
    assert "panel is set when a conversation is created" in chat.text
    messages = (await client.get(f"{path}/messages")).json()["items"]
    assert messages == []  # neither refusal stored the message


async def test_a_routed_reply_taken_over_keeps_its_agent_and_routing(
    database_url: str, scripted: ScriptedProvider
) -> None:
    """A stalls mid-answer and stops beating; B (sharing the Redis log) ends the reply: the
    partial answer is saved as the routed agent's, with its routing, and the stream B ends
    names that agent."""
    await _require_redis()
    scripted.add_script("router", Script(respond=_router))
    scripted.add_script("ledger", Script(chunks=["Refund ", "soon"], stall_after=1))
    async with (
        instance(database_url, scripted, **REDIS) as a,
        instance(database_url, scripted, **REDIS) as b,
    ):
        conversation_id = await _panel_conversation(a.http)
        path = f"/api/conversations/{conversation_id}"
        await a.http.post(f"{path}/messages", json={"message": "invoice"})
        stream_id, _ = await a.container.conversations.reply_stream(conversation_id, owner="dev")
        await _tokens_in(a.container, stream_id, 1)
        await a.container.reply_liveness.close()  # A stops beating; its task stays stalled

        events = await wait_done(b.container, stream_id, timeout=STALE + 10)
        types = [e.type for e in events]
        assert types == ["routing", "turn_start", "token", "turn_complete", "error", "done"]
        assert events[3].data["name"] == "billing"
        answers = [
            m for m in (await b.http.get(f"{path}/messages")).json()["items"] if m["role"] != "user"
        ]
        assert [(m["author"], m["status"], m["content"]) for m in answers] == [
            ("billing", "partial", "Refund ")
        ]
        assert answers[0]["routing"]["agent"] == "billing"
        await a.container.conversations.shutdown(2)


@pytest.mark.local_model
async def test_the_local_model_routes_validly_held_by_the_answers_schema(
    client: httpx.AsyncClient, container: Container
) -> None:
    """A 135M-parameter supervisor answers free text no parser can use; asked with the
    routing schema, its grammar lets it answer only a valid choice, first time."""
    if not container.providers.get("local").configured:
        pytest.skip("the local model is not installed")
    panel = {
        "agents": [
            {"name": "billing", "description": "Invoices, refunds.", "model": "scripted/echo"},
            {"name": "tech", "description": "Errors, crashes.", "model": "scripted/echo"},
        ]
    }
    created = await client.post(
        "/api/conversations", json={"default_model": "local/smollm2", "panel": panel}
    )
    frames = await chat(client, conversation_id=created.json()["id"], message="Refund?")
    routing = frames[0].data
    assert routing["fallback"] is False
    assert routing["attempts"] == 1
    assert routing["agent"] in {"billing", "tech", "supervisor"}

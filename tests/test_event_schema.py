"""The event schema: one typed constructor per event, every type documented, and a
conversation reply's events naming the conversation and the message they answer (not a
run's `turn` and `bot`, which a reply has not)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import httpx

from symposia.domain.event_types import Payload
from symposia.domain.events import EventType
from tests.sse import collect

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"


def test_every_event_type_has_one_payload_type_and_is_documented() -> None:
    types = [payload.type for payload in get_args(Payload)]
    assert set(types) == set(get_args(EventType))
    documented = set(re.findall(r"^\| `(\w+)` \|", DOC.read_text(), flags=re.MULTILINE))
    assert documented == set(get_args(EventType))


async def test_a_reply_names_its_conversation_and_question(client: httpx.AsyncClient) -> None:
    conversation = (await client.post("/api/conversations", json={})).json()
    path = f"/api/conversations/{conversation['id']}"
    question = (await client.post(f"{path}/messages", json={"message": "Hi"})).json()
    frames = await collect(client, f"{path}/stream")
    by_type = {f.event: f.data for f in frames}  # the last of each type
    speaker = {
        "conversation_id": conversation["id"],
        "in_reply_to": question["id"],
        "name": "assistant",
    }
    assert by_type["turn_start"] == {**speaker, "model": "scripted/echo"}
    assert by_type["token"].keys() == {"name", "delta"}
    complete = by_type["turn_complete"]
    assert {key: complete[key] for key in speaker} == speaker
    assert "bot" not in complete
    assert "turn" not in complete
    assert complete["content"] == "You said: Hi"
    assert by_type["done"] == {
        "status": "completed",
        "message_id": complete["message_id"],
        "response_id": complete["message_id"],
        "conversation_id": conversation["id"],
    }

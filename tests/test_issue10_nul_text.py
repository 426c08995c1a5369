"""Issue 10, point 2: a NUL (U+0000) from a model broke PostgreSQL writes, lost the turn,
hung the chat stream, cut `/v1` without `[DONE]`, and put the model's text in the log
inside the SQL parameters of a traceback.

Stored text has U+0000 (and unpaired surrogates) replaced by U+FFFD on both databases;
the live events relay the model's text as it came. A storage failure while saving a
turn still ends every stream, and no log line carries SQL parameters.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from symposia.container import Container
from symposia.domain.models import Message
from symposia.providers.scripted import Script, ScriptedProvider
from symposia.storage.db import session_factory
from symposia.storage.tables import ConversationRow, RunRow
from tests.fakes.live import LiveServer
from tests.helpers import wait_done, wait_for_event
from tests.sse import Frame, frames

NUL_REPLY = ["before", "\x00", "after"]
STORED = "before\ufffdafter"
SECRET = "model-said-something-private"


def _bots(model: str) -> list[dict[str, Any]]:
    return [{"name": "A", "model": model}, {"name": "B", "model": model}]


async def _sse(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> list[Frame]:
    out: list[Frame] = []
    async with asyncio.timeout(15):  # a stream that never ends fails here, not hangs
        async with client.stream(method, path, **kwargs) as response:
            assert response.status_code == 200, await response.aread()
            async for frame in frames(response):
                if frame.comment is None:
                    out.append(frame)
    return out


async def test_a_run_whose_model_emits_nul_completes_with_the_text_stored(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    scripted.add_script("nul", Script(chunks=NUL_REPLY))
    created = await client.post(
        "/api/run", json={"topic": "t", "bots": _bots("scripted/nul"), "max_turns": 2}
    )
    run_id = created.json()["id"]
    events = await wait_done(container, run_id)
    assert events[-1].data == {"status": "completed", "ended_by": "max_turns"}
    tokens = [e.data["delta"] for e in events if e.type == "token" and e.data["turn"] == 0]
    assert "".join(tokens) == "before\x00after"  # live events relay what the model said
    export = (await client.get(f"/api/export/{run_id}.json")).json()
    assert export["status"] == "completed"
    assert [m["content"] for m in export["messages"]] == [STORED, STORED]


async def test_a_chat_stream_whose_model_emits_nul_ends_with_done(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("nul", Script(chunks=NUL_REPLY))
    got = await _sse(
        client, "POST", "/api/chat/stream", json={"message": "hi", "model": "scripted/nul"}
    )
    done = got[-1]
    assert done.event == "done"
    assert done.data["status"] == "completed"
    messages = (
        await client.get(f"/api/conversations/{done.data['conversation_id']}/messages")
    ).json()["items"]
    assert [m["content"] for m in messages] == ["hi", STORED]


async def test_v1_with_a_conversation_whose_model_emits_nul_ends_with_done(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    scripted.add_script("nul", Script(chunks=NUL_REPLY))
    async with asyncio.timeout(15):
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted/nul",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"X-Symposia-Conversation": "new"},
        )
    assert response.status_code == 200
    assert response.text.rstrip().endswith("data: [DONE]")
    conversation_id = response.headers["x-symposia-conversation"]
    messages = (await client.get(f"/api/conversations/{conversation_id}/messages")).json()
    assert [m["content"] for m in messages["items"]] == ["hi", STORED]


async def test_titles_prompts_and_run_errors_with_nul_are_stored_cleaned(
    container: Container,
) -> None:
    """Every write path, not only messages: straight to the repositories."""
    conversations = container.conversations.repo
    from symposia.domain.models import Conversation, RunStatus

    conversation = Conversation(default_model="scripted/echo", title="a\x00b", owner="o")
    await conversations.add(conversation)
    await conversations.update(conversation.id, {"system_prompt": "p\x00\ud800"})
    stored = await conversations.get(conversation.id)
    assert stored is not None
    assert (stored.title, stored.system_prompt) == ("a\ufffdb", "p\ufffd\ufffd")
    runs = container.run_repository
    from symposia.domain.models import BotConfig, Run

    run = Run(topic="t\x00", bots=[BotConfig("A\x00", "scripted/echo", "s\x00")], max_turns=1)
    await runs.add(run)
    await runs.set_status(
        run.id, RunStatus.ERROR, error={"message": "x\x00y"}, error_message="e\x00"
    )
    got = await runs.get(run.id)
    assert got is not None
    assert (got.topic, got.bots[0].name, got.bots[0].system_prompt) == (
        "t\ufffd",
        "A\ufffd",
        "s\ufffd",
    )
    assert (got.error, got.error_message) == ({"message": "x\ufffdy"}, "e\ufffd")


async def test_sql_parameters_never_reach_an_exception_message(container: Container) -> None:
    with pytest.raises(IntegrityError) as caught:  # no such run: a foreign-key violation
        await container.run_repository.add_message("no-such-run", Message("assistant", "A", SECRET))
    assert SECRET not in str(caught.value)


async def _delete_row(container: Container, table: Any, row_id: str) -> None:
    async with session_factory(container.engine).begin() as session:
        await session.execute(delete(table).where(table.id == row_id))


async def test_a_run_whose_turn_cannot_be_saved_ends_and_logs_no_text(
    client: httpx.AsyncClient,
    container: Container,
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted.add_script("slow", Script(chunks=[SECRET, " and more"], delay=0.2))
    created = await client.post(
        "/api/run", json={"topic": "t", "bots": _bots("scripted/slow"), "max_turns": 2}
    )
    run_id = created.json()["id"]
    await wait_for_event(container, run_id, lambda e: e.type == "token")
    await _delete_row(container, RunRow, run_id)  # saving the turn now fails in the database
    with caplog.at_level(logging.INFO):
        events = await wait_done(container, run_id)
        await asyncio.sleep(0.05)  # the task's done-callback logs after the stream ends
    assert [e.type for e in events[-2:]] == ["run_status", "done"]
    assert any(e.type == "error" for e in events)
    assert events[-1].data == {"status": "error"}
    assert caplog.records, "the failure is logged"
    for record in caplog.records:
        line = record.getMessage() + (
            logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        )
        assert SECRET not in line
        assert "parameters: " not in line


async def test_a_chat_reply_that_cannot_be_saved_ends_with_an_error_and_done(
    client: httpx.AsyncClient,
    container: Container,
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted.add_script("slow", Script(chunks=[SECRET, " and more"], delay=0.2))
    created = await client.post("/api/conversations", json={"default_model": "scripted/slow"})
    conversation_id = created.json()["id"]
    asked = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"message": "hi"}
    )
    stream_id, _ = await container.conversations.reply_stream(conversation_id, owner="dev")
    assert stream_id == f"reply-{asked.json()['id']}"
    reader = asyncio.create_task(
        _sse(client, "GET", f"/api/conversations/{conversation_id}/stream")
    )
    await wait_for_event(container, stream_id, lambda e: e.type == "token")
    await _delete_row(container, ConversationRow, conversation_id)
    with caplog.at_level(logging.INFO):
        got = await reader
    assert [f.event for f in got[-2:]] == ["error", "done"]
    assert got[-2].data["code"] == "storage_error"
    assert got[-1].data["status"] == "error"
    assert got[-1].data["message_id"] is None
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert not record.exc_info or SECRET not in json.dumps(str(record.exc_info[1]))


async def test_a_v1_reply_that_cannot_be_saved_still_ends_with_done(
    live: LiveServer,
    container: Container,
    scripted: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted.add_script("slow", Script(chunks=[SECRET, " and more"], delay=0.2))
    body = {
        "model": "scripted/slow",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    received = b""
    with caplog.at_level(logging.INFO):
        async with (
            asyncio.timeout(15),
            httpx.AsyncClient(base_url=live.base_url) as client,
            client.stream(
                "POST",
                "/v1/chat/completions",
                json=body,
                headers={"X-Symposia-Conversation": "new"},
            ) as response,
        ):
            assert response.status_code == 200
            conversation_id = response.headers["x-symposia-conversation"]
            async for chunk in response.aiter_bytes():
                if not received:
                    await _delete_row(container, ConversationRow, conversation_id)
                received += chunk
    assert SECRET.encode() in received
    assert received.rstrip().endswith(b"data: [DONE]")
    assert any("could not save" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert SECRET not in record.getMessage()

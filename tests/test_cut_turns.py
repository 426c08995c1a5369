"""Issue 21, "one recovery path for every leased stream": a run's turn and a conversation's
reply, cut off with their writer, are closed by one module (`orchestration/cut_turns`), so
both keep the text the log has as a partial message with an estimated usage, and say so
with the same `turn_complete`. (Before, a cut run turn was saved with no usage at all.)

The log is Redis, shared by both servers, so the cut turn's text survives its writer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from symposia.domain.events import Event
from symposia.domain.models import BotConfig, ReplyStatus, RunStatus
from symposia.orchestration.answer import CHARS_PER_TOKEN_ESTIMATE
from symposia.providers.scripted import Script, ScriptedProvider
from tests.helpers import wait_for_event
from tests.test_event_log_contract import _require_redis
from tests.test_reply_streams import REDIS, _conversation, _messages, _say, _tokens_in, instance
from tests.test_takeover import Servers, servers  # noqa: F401 (the fixture)

CUT_TEXT = "partial words "


def _check_estimated(usage: dict[str, Any] | None, text: str) -> None:
    assert usage is not None
    assert usage["estimated"] is True
    assert usage["completion_tokens"] == len(text) // CHARS_PER_TOKEN_ESTIMATE
    assert usage["prompt_tokens"] >= 1  # the model was sent something


def _closing(events: list[Event]) -> Event:
    return next(e for e in reversed(events) if e.type == "turn_complete")


async def test_a_cut_reply_is_kept_with_an_estimated_usage(
    database_url: str, scripted: ScriptedProvider
) -> None:
    await _require_redis()
    scripted.add_script("stall", Script(chunks=["partial ", "words ", "never"], stall_after=2))
    async with (
        instance(database_url, scripted, **REDIS) as a,
        instance(database_url, scripted, **REDIS) as b,
    ):
        conversation_id = await _conversation(a.http, "scripted/stall")
        question = (await _say(a.http, conversation_id, "hi")).json()["id"]
        stream_id, _ = await a.container.conversations.reply_stream(conversation_id, owner="dev")
        await _tokens_in(a.container, stream_id, 2)
        await a.container.reply_liveness.close()  # A stops beating; its call stays stalled
        replies = b.container.conversations.replies
        for _ in range(400):  # B's sweep ends it
            reply = await replies.get(question)
            assert reply is not None
            if reply.status is not ReplyStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        assert reply.status is ReplyStatus.INTERRUPTED
        partial = (await _messages(b.http, conversation_id))[-1]
        assert (partial["status"], partial["content"]) == ("partial", CUT_TEXT)
        _check_estimated(partial["usage"], CUT_TEXT)
        closing = _closing(await b.container.log.read(stream_id))
        assert closing.data["usage"] == partial["usage"]
        assert closing.data["message_id"] == partial["id"]
        await a.container.conversations.shutdown(2)


async def test_a_cut_run_turn_is_kept_with_an_estimated_usage(
    servers: Servers,  # noqa: F811
    scripted: ScriptedProvider,
) -> None:
    await _require_redis()
    scripted.add_script("stall", Script(chunks=["partial ", "words ", "never"], stall_after=2))
    first = await servers("redis")
    bots = [
        BotConfig("A", "scripted/count", "", max_tokens=3),
        BotConfig("B", "scripted/stall", ""),
    ]
    run = await first.runs.create("t", bots, 2, owner="dev")
    await wait_for_event(first, run.id, lambda e: e.type == "token" and e.data["delta"] == "words ")
    await first.liveness.close()  # the owner stops renewing its lease
    second = await servers("redis")
    for _ in range(400):
        stored = await second.run_repository.get(run.id)
        assert stored is not None
        if stored.done_event is not None:
            break
        await asyncio.sleep(0.05)
    assert stored.status is RunStatus.COMPLETED
    partial = stored.messages[1]
    assert (partial.status.value, partial.content) == ("partial", CUT_TEXT)
    assert partial.usage is not None
    _check_estimated(partial.usage.to_dict(), CUT_TEXT)
    events = await second.log.read(run.id)
    closing = next(e for e in events if e.type == "turn_complete" and e.data["turn"] == 1)
    assert closing.data["usage"] == partial.usage.to_dict()

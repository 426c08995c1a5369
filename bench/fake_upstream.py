"""The fake OpenAI server of the tests as a process of its own, for the benchmarks.

Every streaming request is answered at once with 64 tokens, or 512 when the model asked
for is `long` (`tools` and `long-tools`: one tool call whose arguments come in as many
pieces); connections are kept alive, as real providers do. Prints its port, then
serves until it is killed. Apart from the benchmark's clients and Symposia, so that each
side of the comparison is measured without sharing a process with the other.

    .venv/bin/python bench/fake_upstream.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.provider_server import FakeProviderServer, FakeToolCall, Received, Reply


def _tool_reply(pieces: int) -> Reply:
    call = FakeToolCall("call_bench", "lookup", tuple(f" w{i}" for i in range(pieces)))
    return Reply(tokens=[], tool_calls=[call], prompt_tokens=5, completion_tokens=pieces)


REPLIES = {
    "gpt-4o-mini": Reply(tokens=[f" w{i}" for i in range(64)], prompt_tokens=5),
    "long": Reply(tokens=[f" w{i}" for i in range(512)], prompt_tokens=5),
    "tools": _tool_reply(64),
    "long-tools": _tool_reply(512),
}


async def main() -> None:
    async with FakeProviderServer() as fake:
        fake.keep_alive = True
        fake.openai_models = list(REPLIES)
        original = fake._next_reply

        def reply_for(route: str, request: Received) -> Reply:
            if route != "openai":
                return original(route, request)
            model = request.body.get("model", "gpt-4o-mini")
            fake.requests.clear()  # a long benchmark must not grow the log
            return REPLIES.get(model.split("/")[-1], REPLIES["gpt-4o-mini"])

        fake._next_reply = reply_for  # type: ignore[method-assign]
        print(fake.port, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())

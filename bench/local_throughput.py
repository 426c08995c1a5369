"""Tokens per second of the local model: llama-cpp-python alone vs streamed through Symposia.

Run: .venv/bin/python bench/local_throughput.py  (prints figures; it is not a test)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx

from symposia.providers.local import default_model_path

SYSTEM = "You are a concise debater."
TOPIC = "Is tea better than coffee? Give your opening argument."
MAX_TOKENS = 128
PORT = 8765


def direct() -> float:
    from llama_cpp import Llama

    llama = Llama(model_path=str(default_model_path()), n_ctx=2048, verbose=False)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TOPIC}]
    llama.create_chat_completion(messages=messages, max_tokens=8)  # warm up
    start = time.perf_counter()
    first = None
    count = 0
    for chunk in llama.create_chat_completion(
        messages=messages, max_tokens=MAX_TOKENS, temperature=0.0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            first = first or time.perf_counter()
            count += 1
    elapsed = time.perf_counter() - start
    print(f"llama-cpp-python alone: {count} tokens in {elapsed:.2f}s = {count / elapsed:.1f} tok/s")
    llama.close()
    return count / elapsed


async def through_server() -> float:
    env = {**os.environ, "PORT": str(PORT), "DEV_MODE": "true", "LOCAL_PRELOAD": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "symposia", "serve"], env=env, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for _ in range(200):
                try:
                    await client.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            bot = {
                "model": "local/smollm2",
                "system_prompt": SYSTEM,
                "temperature": 0.0,
                "max_tokens": MAX_TOKENS,
            }
            run = await client.post(
                "/api/run",
                json={
                    "topic": TOPIC,
                    "max_turns": 2,
                    "bots": [dict(bot, name="A"), dict(bot, name="B")],
                },
            )
            run_id = run.json()["id"]
            rates = []
            turn_start = 0.0
            tokens = 0
            async with client.stream("GET", f"/api/stream/{run_id}") as response:
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "turn_start":
                            turn_start, tokens = time.perf_counter(), 0
                        elif event == "token":
                            tokens += 1
                        elif event == "turn_complete":
                            elapsed = time.perf_counter() - turn_start
                            usage = json.loads(line[5:])["usage"]
                            rates.append(tokens / elapsed)
                            print(
                                f"through Symposia (SSE): {tokens} deltas "
                                f"({usage['completion_tokens']} tokens) in {elapsed:.2f}s = "
                                f"{tokens / elapsed:.1f} tok/s, first token "
                                f"{usage['time_to_first_token_ms']:.0f} ms"
                            )
            return sum(rates) / len(rates)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    alone = direct()
    served = asyncio.run(through_server())
    print(f"ratio served/alone: {served / alone:.2f}")

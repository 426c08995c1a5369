"""Onboarding traps (issue 22 point 9): the README's "Any OpenAI client" example against
the open default server, and what the first API key does to what was made before it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI

from symposia.app import container_of, create_app
from symposia.providers.registry import ProviderRegistry
from symposia.providers.scripted import ScriptedProvider
from tests.fakes.live import LiveServer
from tests.helpers import wait_done
from tests.test_allowed_hosts import open_app, open_live, open_settings  # noqa: F401

HELLO = [{"role": "user", "content": "Hello"}]


async def test_the_readme_openai_example_works_on_the_open_server(
    open_live: LiveServer,  # noqa: F811
    open_app: FastAPI,  # noqa: F811
) -> None:
    """The openai SDK always sends `Authorization: Bearer <api_key>`: with no credentials
    configured, a bearer that is not a key of ours is ignored."""
    client = openai.AsyncOpenAI(base_url=f"{open_live.base_url}/v1", api_key="anything")
    async with client:
        answer = await client.chat.completions.create(model="scripted/echo", messages=HELLO)  # type: ignore[arg-type]
        assert "Hello" in (answer.choices[0].message.content or "")
        stream = await client.chat.completions.create(
            model="scripted/echo",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert "Hello" in text
        # A key of ours that is wrong is still refused: it says something is misconfigured.
        wrong = openai.AsyncOpenAI(
            base_url=f"{open_live.base_url}/v1", api_key="sym_000000000000_" + "x" * 43
        )
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="scripted/echo", messages=HELLO)  # type: ignore[arg-type]
        await wrong.close()
        # Once a key exists the server is not open: the stray bearer is a 401 again.
        await container_of(open_app).api_keys.create("first")
        container_of(open_app).auth._open_checked = (0.0, True)  # skip the 5 s recheck
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="scripted/echo", messages=HELLO)  # type: ignore[arg-type]


def _keys_create(database: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    for name in ("BASIC_AUTH_USER", "BASIC_AUTH_PW_HASH", "OIDC_ISSUER"):
        env.pop(name, None)
    created = subprocess.run(
        [sys.executable, "-m", "symposia", "keys", "create", "--name", "mine", *extra],
        env=env,
        cwd=database.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    return created


def _app(database: Path) -> FastAPI:
    return create_app(
        open_settings(database_url=f"sqlite:///{database}"),
        ProviderRegistry([ScriptedProvider(token_delay=0.0)]),
    )


async def _anonymous_work(database: Path) -> tuple[str, str]:
    """An open server's finished run and a conversation (owned by `local`)."""
    app = _app(database)
    await container_of(app).start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            run = await http.post("/api/run", json={"topic": "tea", "max_turns": 1})
            assert run.status_code == 201, run.text
            await wait_done(container_of(app), run.json()["id"])
            conversation = await http.post("/api/conversations", json={"title": "t"})
            assert conversation.status_code == 201, conversation.text
    finally:
        await container_of(app).shutdown()
    return run.json()["id"], conversation.json()["id"]


async def _visible(database: Path, key: str) -> tuple[list[str], list[str]]:
    """What the key sees, on a server started after it was made."""
    app = _app(database)
    await container_of(app).start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", headers={"X-API-Key": key}
        ) as http:
            runs = (await http.get("/api/runs")).json()["items"]
            conversations = (await http.get("/api/conversations")).json()["items"]
    finally:
        await container_of(app).shutdown()
    return [r["id"] for r in runs], [c["id"] for c in conversations]


async def test_the_first_key_says_it_hides_what_was_made_before(tmp_path: Path) -> None:
    database = tmp_path / "s.db"
    await _anonymous_work(database)
    created = _keys_create(database)
    assert "authentication is now on" in created.stderr
    assert "--adopt-anonymous" in created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert await _visible(database, key) == ([], [])
    second = _keys_create(database)  # not the first: nothing changes, nothing said
    assert second.stderr == ""


async def test_adopt_anonymous_gives_the_new_key_what_was_made_before(tmp_path: Path) -> None:
    database = tmp_path / "s.db"
    run_id, conversation_id = await _anonymous_work(database)
    created = _keys_create(database, "--adopt-anonymous")
    assert "1 runs, 1 conversations, 0 responses" in created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert await _visible(database, key) == ([run_id], [conversation_id])

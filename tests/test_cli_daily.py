"""The terminal client as people use it daily: client options before the command, whole
ids in a pipe and any unique start of an id accepted, a refused `--model` or `--turns`
ending the command with status 1, and a human agent's turn typed at the terminal."""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import pexpect
import pytest

from symposia.cli import build_parser, main
from symposia.cli.client import Api, ApiError, CliError, resolve_id
from tests.test_cli_server import RUN_ID, Server, piped, server, spawn

__all__ = ["server"]  # a fixture used here

LONG_TOPIC = "Should every city in the world ban private cars from its centre by the year 2040?"


def _run(server: Server, topic: str = "Prefixes", max_turns: int = 1) -> str:
    bots = [{"name": "A", "model": "scripted/count"}, {"name": "B", "model": "scripted/echo"}]
    with server.api() as client:
        response = client.post(
            "/api/run", json={"topic": topic, "bots": bots, "max_turns": max_turns}
        )
        assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    server.wait_finished(run_id)
    return run_id


def test_client_options_before_the_command(server: Server) -> None:
    run_id = _run(server)
    before = piped("--server", server.url, "--api-key", server.key, "runs", "list")
    assert before.returncode == 0, before.stderr
    assert run_id in before.stdout
    # given after the command too, the later one stands
    both = piped("--server", "http://127.0.0.1:9", "runs", "list", "--server", server.url,
                 key=server.key)  # fmt: skip
    assert both.returncode == 0, both.stderr


def test_client_options_refused_for_the_server_commands() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--server", "http://127.0.0.1:9", "db", "upgrade"])
    assert exited.value.code == 2
    args = build_parser().parse_args(["runs", "list"])
    assert args.server is None
    assert args.api_key is None


def test_runs_list_in_a_pipe_prints_whole_ids_and_topics(server: Server) -> None:
    run_id = _run(server, LONG_TOPIC)
    out = piped("runs", "list", "--server", server.url, key=server.key).stdout
    header, *rows = out.splitlines()
    assert header.split("\t") == ["id", "status", "turns", "created", "topic"]
    row = next(row.split("\t") for row in rows if row.startswith(run_id))
    assert row[0] == run_id
    assert row[1:3] == ["completed", "1/1"]
    assert row[4] == LONG_TOPIC
    assert "…" not in out


def test_runs_list_in_a_terminal_is_a_table_with_whole_ids(server: Server) -> None:
    run_id = _run(server, LONG_TOPIC)
    child = spawn(server, "runs", "list")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert run_id in child.before
    assert LONG_TOPIC[:59] + "…" in child.before  # the topic is cut to its column


def test_a_unique_start_of_an_id_is_taken_by_every_command(server: Server) -> None:
    run_id = _run(server, "Prefix show")
    shown = piped("runs", "show", run_id[:8], "--server", server.url, key=server.key)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"run {run_id}: Prefix show")
    exported = piped(
        "runs", "export", run_id[:6], "-o", "-", "--format", "json",
        "--server", server.url, key=server.key,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert f'"id": "{run_id}"' in exported.stdout or run_id in exported.stdout

    chat = piped("chat", "--model", "scripted/echo", "--server", server.url, key=server.key,
                 stdin="hello\n")  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    with server.api() as client:
        conversation = client.get("/api/conversations").json()["items"][0]["id"]
    again = piped("chat", "--conversation", conversation[:7], "--server", server.url,
                  key=server.key, stdin="")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"conversation {conversation}, 2 messages" in again.stdout

    unknown = piped("runs", "show", "ffffff00", "--server", server.url, key=server.key)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "symposia: not found: run 'ffffff00' not found (no id of yours starts so)"
    )


def _api(ids: list[str], *, filters: bool = True) -> tuple[Api, list[httpx.Request]]:
    """An Api whose server lists `ids`, a page of at most `limit` at a time, and the
    requests it got; a server that `filters` answers `id_prefix` (an older one ignores it)."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        params = request.url.params
        limit, offset = int(params["limit"]), int(params.get("offset", 0))
        prefix = params.get("id_prefix") if filters else None
        listed = [i for i in ids if i.startswith(prefix)] if prefix else ids
        page = {"items": [{"id": i} for i in listed[offset : offset + limit]], "limit": limit}
        return httpx.Response(200, json={**page, **({"id_prefix": prefix} if prefix else {})})

    api = Api("http://symposia.test")
    api.http = httpx.Client(base_url=api.base_url, transport=httpx.MockTransport(handler))
    return api, requests


@pytest.mark.parametrize("filters", [True, False], ids=["server filters", "older server"])
def test_resolve_id_finds_the_one_id_and_refuses_ambiguity(filters: bool) -> None:
    ids = [f"{n:032x}" for n in range(450)]  # three pages of 200
    target = "abcdef" + "0" * 26
    pair = ["ffff00a" + "0" * 25, "ffff00b" + "0" * 25]
    api, requests = _api([*ids, target, *pair], filters=filters)
    with api:
        assert resolve_id(api, "abcdef", "/api/runs", "run") == target
        # one request where the server filters; else the first and every page
        assert len(requests) == (1 if filters else 4)
        assert resolve_id(api, "ABCDEF", "/api/runs", "run") == target  # as typed
        assert resolve_id(api, "abc", "/api/runs", "run") == "abc"  # too short: as it is
        with pytest.raises(CliError, match="starts the ids of more than 5 runs") as many:
            resolve_id(api, "000000", "/api/runs", "run")
        assert f"{0:032x}, {1:032x}" in str(many.value)  # the candidates, named
        with pytest.raises(CliError, match=f"starts the ids of 2 runs \\({', '.join(pair)}\\)"):
            resolve_id(api, "ffff00", "/api/runs", "run")
        with pytest.raises(ApiError, match="not found"):
            resolve_id(api, "123456", "/api/runs", "run")


def test_chat_with_a_refused_model_exits_1(server: Server) -> None:
    refused = piped("chat", "--model", "nope/x", "--server", server.url, key=server.key,
                    stdin="hello\nagain\n")  # fmt: skip
    assert refused.returncode == 1
    assert "unknown provider 'nope'" in refused.stderr
    assert refused.stderr.count("unknown provider") == 1  # it stopped at the first
    assert "Traceback" not in refused.stderr


def test_debate_turns_too_few_for_a_preset_are_refused(server: Server) -> None:
    refused = piped("debate", "Q", "--preset", "mad", "--turns", "2",
                    "--server", server.url, key=server.key)  # fmt: skip
    assert refused.returncode == 1
    assert "max_turns 2 is too few for this moderated run" in refused.stderr
    assert "take 7 turns" in refused.stderr
    with server.api() as client:
        assert all(run["topic"] != "Q" or run["policy"] != "moderated"
                   for run in client.get("/api/runs").json()["items"])  # fmt: skip


def test_debate_human_agent_typed_in_a_pipe(server: Server) -> None:
    result = piped(
        "debate", "Cars?", "--bot", "A=scripted/echo", "--human", "Ana", "--turns", "3",
        "--server", server.url, key=server.key, stdin="I walk everywhere.\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Ana: I walk everywhere." in lines
    assert lines[-1].endswith("completed (ended by max_turns)")
    run_id = RUN_ID.search(result.stdout)
    assert run_id is not None
    run = server.get(f"/api/export/{run_id.group(1)}.json")
    ana = [m for m in run["messages"] if m["author"] == "Ana"]
    assert [m["content"] for m in ana] == ["I walk everywhere."]
    assert ana[0]["turn"] == 1  # the human agent's own turn, not a remark between turns
    assert "I walk everywhere." in run["messages"][-1]["content"]  # A answered it


def test_debate_human_agent_typed_in_a_terminal(server: Server) -> None:
    child = spawn(server, "debate", "Cars?", "--bot", "A=scripted/echo", "--human", "Ana",
                  "--turns", "2")  # fmt: skip
    child.expect("Ana>", timeout=60)  # prompt_toolkit's prompt, escape codes after it
    child.sendline("Bikes are better.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "completed (ended by max_turns)" in child.before


def test_parse_human_needs_a_name() -> None:
    from symposia.cli.debate import parse_human

    with pytest.raises(argparse.ArgumentTypeError):
        parse_human("  ")


def test_the_person_is_asked_even_when_the_wait_is_stored_after_its_event() -> None:
    """The server sends `awaiting_input` just before it stores the wait; a client that
    looked once saw `running` and never asked the person (the run then waited until its
    timeout: seen as a hang in the terminal test under load)."""
    from symposia.cli.debate import answer_for_person

    statuses = iter(["running", "running", "awaiting_input"])
    sent: list[dict[str, Any]] = []

    class Api:
        def json(self, method: str, path: str) -> dict[str, Any]:
            return {"status": next(statuses)}

        def request(self, method: str, path: str, json: dict[str, Any]) -> None:
            sent.append(json)

    answer_for_person(Api(), "r1", {"name": "Ana"}, lambda label: "Bikes.")  # type: ignore[arg-type]
    assert sent == [{"content": "Bikes.", "author": "Ana"}]

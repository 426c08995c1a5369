"""Issue 27: the Responses API's MCP tool, driven by the official openai SDK (and
openai-agents' `HostedMCPTool`) against servers nobody here wrote: PyPI's mcp-server-time
(stdio, the operator's) and npm's server-everything over Streamable HTTP (a client's
`server_url` the operator allows). The fake upstream calls the first tool offered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from symposia.app import container_of, create_app
from symposia.errors import InvalidInputError
from symposia.security.outbound_urls import UrlPrefix, check_url, parse_prefixes
from tests.conftest import remote_settings
from tests.fakes.live import LiveServer, free_port, start_live_server
from tests.fakes.provider_server import FakeProviderServer
from tests.fakes.tool_caller import tool_caller
from tests.mcp_servers import node_server, servers_file
from tests.openapi.schemas import conforms

MODEL = "openai/gpt-4o-mini"
UTC = {"timezone": "UTC"}
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
ITEM_SCHEMAS = {
    "mcp_list_tools": "MCPListTools",
    "mcp_call": "MCPToolCall",
    "mcp_approval_request": "MCPApprovalRequest",
}


@pytest.fixture
def everything_url() -> str:
    """Where the npm `everything` server listens when a test starts it (`everything`)."""
    return f"http://127.0.0.1:{free_port()}/mcp"


@pytest.fixture
async def everything(everything_url: str) -> AsyncIterator[str]:
    port = everything_url.split(":")[2].split("/")[0]
    server = await asyncio.create_subprocess_exec(
        str(node_server("mcp-server-everything")),
        "streamableHttp",
        env={**os.environ, "PORT": port},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", int(port))
                writer.close()
                await writer.wait_closed()
                break
            await asyncio.sleep(0.05)
        yield everything_url
    finally:
        server.terminate()
        await server.wait()


@pytest.fixture
async def app(
    fake_provider: FakeProviderServer, tmp_path: Path, everything_url: str
) -> AsyncIterator[FastAPI]:
    folder = tmp_path / "files"
    folder.mkdir()
    settings = remote_settings(
        fake_provider,
        database_url=f"sqlite:///{tmp_path / 'symposia.db'}",
        dev_mode=False,
        basic_auth_user="admin",
        basic_auth_pw_hash="$2b$04$" + "x" * 53,
        rate_limit_chat="1000/minute",
        mcp_servers_file=str(servers_file(tmp_path, folder)),
        mcp_allowed_urls=f"{everything_url},https://",
    )
    application = create_app(settings)
    await container_of(application).start()
    yield application
    await container_of(application).shutdown()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[openai.AsyncOpenAI]:
    _, key = await container_of(app).api_keys.create("sdk")
    async with (
        start_live_server(app) as live,
        openai.AsyncOpenAI(api_key=key, base_url=f"{live.base_url}/v1", max_retries=0) as sdk,
    ):
        yield sdk


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[tuple[LiveServer, str]]:
    _, key = await container_of(app).api_keys.create("agents")
    async with start_live_server(app) as server:
        yield server, key


def _time(**rest: Any) -> dict[str, Any]:
    """The operator's `time` server (mcp-server-time), named by its label."""
    return {"type": "mcp", "server_label": "time", **rest}


def _check_items(response: Any) -> list[dict[str, Any]]:
    """The Response, and each MCP item, as OpenAI's published schema has them."""
    body = response.model_dump(mode="json", exclude_unset=True)
    conforms("Response", body)
    for item in body["output"]:
        if item["type"] in ITEM_SCHEMAS:
            conforms(ITEM_SCHEMAS[item["type"]], item)
    return list(body["output"])


def _asked(fake_provider: FakeProviderServer) -> list[dict[str, Any]]:
    return [r.body for r in fake_provider.requests if r.method == "POST"]


async def test_a_tool_listed_then_called_not_streamed(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(UTC)
    response = await client.responses.create(
        model=MODEL,
        input="What time is it in UTC?",
        tools=[_time(require_approval="never")],  # type: ignore[list-item]
    )
    assert response.status == "completed"
    output = _check_items(response)
    assert [i["type"] for i in output] == ["mcp_list_tools", "message", "mcp_call", "message"]
    listed = output[0]
    assert listed["server_label"] == "time"
    names = [t["name"] for t in listed["tools"]]
    assert names == ["get_current_time", "convert_time"]
    assert listed["tools"][0]["input_schema"]["properties"]["timezone"]["type"] == "string"
    call = output[2]
    assert (call["server_label"], call["name"], call["status"]) == (
        "time",
        "get_current_time",
        "completed",
    )
    assert json.loads(call["arguments"]) == UTC
    assert call["error"] is None
    assert json.loads(call["output"])["timezone"] == "UTC"
    assert response.output_text.startswith("Let me check.I found: {")
    echoed = response.model_dump(mode="json", exclude_unset=True)["tools"]
    assert echoed == [{**_time(require_approval="never")}]  # no function of ours shows
    assert response.usage is not None
    # Two model calls: offered the tools as functions, then given the result.
    first, second = _asked(fake_provider)
    assert [t["function"]["name"] for t in first["tools"]] == [
        "time__get_current_time",
        "time__convert_time",
    ]
    assert [m["role"] for m in second["messages"]][-3:] == ["user", "assistant", "tool"]
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "time__get_current_time"
    # Kept, and retrievable as it was.
    stored = await client.responses.retrieve(response.id)
    assert stored.model_dump() == response.model_dump()


async def test_a_tool_listed_then_called_streamed(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(UTC)
    stream = await client.responses.create(
        model=MODEL,
        input="What time is it in UTC?",
        tools=[_time(require_approval="never")],  # type: ignore[list-item]
        stream=True,
    )
    events = [event async for event in stream]
    for event in events:  # each, strictly, as the SDK's own types have it
        EVENTS.validate_python(event.model_dump(mode="json", exclude_unset=True))
    kinds = [e.type for e in events]
    text = ["response.output_text.delta"]
    message = [
        "response.output_item.added",
        "response.content_part.added",
        *text,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    collapsed = [k for i, k in enumerate(kinds) if not (k in text and kinds[i - 1] in text)]
    arguments = [k for k in collapsed if k == "response.mcp_call_arguments.delta"]
    assert arguments == ["response.mcp_call_arguments.delta"]
    assert collapsed == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        *message,
        "response.output_item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
        *message,
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [e.item.type for e in added] == ["mcp_list_tools", "message", "mcp_call", "message"]
    assert [e.output_index for e in added] == [0, 1, 2, 3]
    call_added = added[2].item
    assert (call_added.status, call_added.arguments) == ("in_progress", "")
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done[2].item.model_dump()["status"] == "completed"
    final = events[-1]
    assert final.type == "response.completed"
    output = _check_items(final.response)
    assert json.loads(output[2]["output"])["timezone"] == "UTC"
    assert output[2]["id"] == call_added.id


async def test_an_approval_asked_then_given_then_refused(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(UTC)
    tools: Any = [_time(allowed_tools=["get_current_time"])]  # OpenAI's default: always
    asked = await client.responses.create(model=MODEL, input="Time in UTC?", tools=tools)
    output = _check_items(asked)
    assert [i["type"] for i in output] == ["mcp_list_tools", "message", "mcp_approval_request"]
    request = output[2]
    assert (request["server_label"], request["name"]) == ("time", "get_current_time")
    assert json.loads(request["arguments"]) == UTC
    assert len(_asked(fake_provider)) == 1  # nothing ran

    approved = await client.responses.create(
        model=MODEL,
        previous_response_id=asked.id,
        tools=tools,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
        ],
    )
    output = _check_items(approved)
    # The earlier list is reused, not listed again.
    assert [i["type"] for i in output] == ["mcp_call", "message"]
    assert output[0]["approval_request_id"] == request["id"]
    assert json.loads(output[0]["output"])["timezone"] == "UTC"
    assert "I found: {" in approved.output_text
    sent = _asked(fake_provider)[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["content"] == "Let me check."
    assert sent[1]["tool_calls"][0]["function"]["name"] == "time__get_current_time"

    again = await client.responses.create(model=MODEL, input="And now?", tools=tools)
    request = _check_items(again)[-1]
    refused = await client.responses.create(
        model=MODEL,
        previous_response_id=again.id,
        tools=tools,
        input=[
            {
                "type": "mcp_approval_response",
                "approval_request_id": request["id"],
                "approve": False,
                "reason": "not now",
            }
        ],
    )
    (call, message) = _check_items(refused)
    assert (call["type"], call["status"], call["output"]) == ("mcp_call", "failed", None)
    assert call["error"]["type"] == "mcp_tool_execution_error"
    assert "not approved" in call["error"]["content"][0]["text"]
    assert "not now" in call["error"]["content"][0]["text"]
    assert "was not approved" in message["content"][0]["text"]
    # An answer to no request of the chain is a 400 naming it.
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model=MODEL,
            previous_response_id=refused.id,
            tools=tools,
            input=[
                {"type": "mcp_approval_response", "approval_request_id": "mcpr_x", "approve": True}
            ],
        )
    assert caught.value.body["param"] == "input.0.approval_request_id"  # type: ignore[index]


async def test_allowed_tools_filter_what_is_listed_and_offered(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(
        {"source_timezone": "UTC", "target_timezone": "Asia/Tokyo", "time": "12:00"}
    )
    response = await client.responses.create(
        model=MODEL,
        input="Noon UTC in Tokyo?",
        tools=[
            _time(
                allowed_tools={"tool_names": ["convert_time"]},
                require_approval={"never": {"tool_names": ["convert_time"]}},
            )
        ],  # type: ignore[list-item]
        tool_choice={"type": "mcp", "server_label": "time", "name": "convert_time"},
    )
    listed, _, call, _ = _check_items(response)
    assert [t["name"] for t in listed["tools"]] == ["convert_time"]
    assert call["name"] == "convert_time"
    assert "Asia/Tokyo" in call["output"]
    (first, second) = _asked(fake_provider)
    assert second.get("tool_choice") in (None, "auto")  # forced once, then free to answer
    assert [t["function"]["name"] for t in first["tools"]] == ["time__convert_time"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "time__convert_time"}}


async def test_a_failing_tool_is_an_mcp_call_with_its_error(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller()
    tools: Any = [
        {
            "type": "mcp",
            "server_label": "faults",
            "allowed_tools": ["fail"],
            "require_approval": "never",
        }
    ]
    response = await client.responses.create(model=MODEL, input="Try it.", tools=tools)
    _, _, call, answer = _check_items(response)
    assert (call["name"], call["status"], call["output"]) == ("fail", "failed", None)
    assert call["error"]["type"] == "mcp_tool_execution_error"
    assert call["error"]["content"][0]["text"]
    assert "I found: Error: " in answer["content"][0]["text"]


async def test_a_client_server_url_over_streamable_http(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, everything: str, app: FastAPI
) -> None:
    fake_provider.responder = tool_caller({"message": "hello from the client's server"})
    tool: Any = {
        "type": "mcp",
        "server_label": "everything",
        "server_url": everything,
        "server_description": "The reference server.",
        "allowed_tools": ["echo"],
        "require_approval": "never",
        "headers": {"X-Symposia-Test": "secret-value"},
    }
    stream = await client.responses.create(
        model=MODEL, input="Echo something.", tools=[tool], stream=True
    )
    events = [event async for event in stream]
    final = events[-1]
    assert final.type == "response.completed"
    listed, _, call, _ = _check_items(final.response)
    assert [t["name"] for t in listed["tools"]] == ["echo"]
    assert "hello from the client's server" in call["output"]
    echoed = final.response.model_dump(mode="json", exclude_unset=True)["tools"][0]
    assert echoed["server_url"] == everything
    assert "headers" not in echoed  # a client's secrets are not kept
    stored = await container_of(app).responses.get(final.response.id, None)
    assert "secret-value" not in json.dumps(stored)


async def test_urls_and_servers_that_are_not_allowed_are_a_400_naming_the_field(
    client: openai.AsyncOpenAI,
) -> None:
    url = {"server_label": "remote"}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**url, "server_url": "http://mcp.example.test/mcp"}, "server_url", "MCP_ALLOWED_URLS"),
        ({**url, "server_url": "https://127.0.0.1/mcp"}, "server_url", "loopback"),
        ({**url, "server_url": "https://10.1.2.3/mcp"}, "server_url", "private"),
        ({**url, "server_url": "https://169.254.169.254/x"}, "server_url", "link-local"),
        ({**url, "server_url": "https://[::1]/mcp"}, "server_url", "loopback"),
        ({**url, "server_url": "https://u@8.8.8.8/mcp"}, "server_url", "http"),
        ({**url, "server_url": "https://nowhere.invalid/"}, "server_url", "cannot be resolved"),
        ({"server_label": "nowhere"}, "server_label", "GET /api/tools"),
        ({"server_label": "secret"}, "server_label", "GET /api/tools"),  # not granted
        ({"server_label": "time", "headers": {"A": "x"}}, "headers", "configured server"),
        ({"server_label": "time", "require_approval": "sometimes"}, "require_approval", "always"),
        ({"server_label": "time", "allowed_tools": "echo"}, "allowed_tools", "list"),
        ({"server_label": "bad label"}, "server_label", "letters"),
    ]
    for spec, param, said in cases:
        tool = {"type": "mcp", **spec}
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(
                model=MODEL,
                input="hi",
                tools=[{"type": "function", "name": "f"}, tool],  # type: ignore[list-item]
            )
        body: Any = caught.value.body
        assert body["param"] == f"tools.1.{param}", (spec, body)
        assert said in body["message"], (spec, body)


async def test_prefixes_match_by_host_port_and_path() -> None:
    prefixes = parse_prefixes("https://mcp.example.com/api, http://127.0.0.1:9000/")
    for url in ("https://mcp.example.com/api", "https://mcp.example.com:443/api/mcp"):
        await check_url(url, prefixes, "f")
    await check_url("http://127.0.0.1:9000/mcp", prefixes, "f")  # named: loopback allowed
    for url in (
        "https://mcp.example.com.evil.test/api",
        "https://mcp.example.com/apis",
        "https://mcp.example.com:8443/api",
        "http://mcp.example.com/api",
        "http://127.0.0.1:9001/mcp",
        "ftp://mcp.example.com/api",
    ):
        with pytest.raises(InvalidInputError):
            await check_url(url, prefixes, "f")
    with pytest.raises(ValueError, match="not an http"):
        UrlPrefix.parse("mcp.example.com")
    # A scheme alone: any public host, no loopback name.
    with pytest.raises(InvalidInputError, match="loopback"):
        await check_url("https://localhost/mcp", parse_prefixes("https://"), "f")


async def test_items_sent_back_instead_of_previous_response_id(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    """A store-false client sends the output back as input: the list is reused, the
    approval answered from it."""
    fake_provider.responder = tool_caller(UTC)
    tools: Any = [_time(allowed_tools=["get_current_time"])]
    asked = await client.responses.create(
        model=MODEL, input="Time in UTC?", tools=tools, store=False
    )
    output = _check_items(asked)
    request = output[-1]
    sent_back: Any = [
        {"role": "user", "content": "Time in UTC?"},
        *output,
        {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True},
    ]
    answered = await client.responses.create(model=MODEL, input=sent_back, tools=tools, store=False)
    assert [i["type"] for i in _check_items(answered)] == ["mcp_call", "message"]
    assert "I found: {" in answered.output_text


async def test_openai_agents_hosted_mcp_tool_with_approvals(
    live: tuple[LiveServer, str], fake_provider: FakeProviderServer
) -> None:
    try:
        import agents
    except ImportError:  # the Makefile installs it (no-deps: see OPENAI_AGENTS)
        if os.environ.get("CI"):
            raise
        pytest.skip("openai-agents is not installed: make install")
    server, key = live
    fake_provider.responder = tool_caller(UTC)
    seen: list[str] = []

    def approve(request: Any) -> Any:
        seen.append(request.data.name)
        return {"approve": True}

    sdk = openai.AsyncOpenAI(api_key=key, base_url=f"{server.base_url}/v1", max_retries=0)
    agent = agents.Agent(
        name="Clock",
        instructions="Tell the time.",
        model=agents.OpenAIResponsesModel(model=MODEL, openai_client=sdk),
        tools=[
            agents.HostedMCPTool(
                tool_config={
                    "type": "mcp",
                    "server_label": "time",
                    "allowed_tools": ["get_current_time"],
                    "require_approval": "always",
                },
                on_approval_request=approve,
            )
        ],
    )
    agents.set_tracing_disabled(True)
    result = await agents.Runner.run(agent, "What time is it in UTC?")
    assert seen == ["get_current_time"]
    assert "I found: {" in result.final_output
    kinds = [item.type for item in result.new_items]
    assert "mcp_approval_request_item" in kinds
    assert "mcp_approval_response_item" in kinds
    await sdk.close()


async def test_an_approval_asked_on_openai_is_run_on_anthropic(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    """The chain is Symposia's: the call an OpenAI model asked for, approved, goes to an
    Anthropic model as its tool_use and tool_result."""
    fake_provider.responder = tool_caller(UTC)
    tools: Any = [_time(allowed_tools=["get_current_time"])]
    asked = await client.responses.create(model=MODEL, input="Time in UTC?", tools=tools)
    request = _check_items(asked)[-1]
    answered = await client.responses.create(
        model="anthropic/claude-haiku-4-5",
        previous_response_id=asked.id,
        tools=tools,
        input=[
            {"type": "mcp_approval_response", "approval_request_id": request["id"], "approve": True}
        ],
    )
    call, message = _check_items(answered)
    assert call["status"] == "completed"
    assert "I found: {" in message["content"][0]["text"]
    (sent,) = fake_provider.requests_to("anthropic")
    roles = [m["role"] for m in sent.body["messages"]]
    assert roles == ["user", "assistant", "user"]
    use = sent.body["messages"][1]["content"][-1]
    assert (use["type"], use["name"], use["id"]) == (
        "tool_use",
        "time__get_current_time",
        call["id"],
    )
    assert sent.body["messages"][2]["content"][0]["tool_use_id"] == call["id"]
    assert [t["name"] for t in sent.body["tools"]] == ["time__get_current_time"]


async def test_a_server_that_cannot_be_reached_lists_an_error_and_the_model_goes_on(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, everything_url: str
) -> None:
    fake_provider.responder = tool_caller(plain="No tools today.")
    tool: Any = {"type": "mcp", "server_label": "down", "server_url": everything_url}
    stream = await client.responses.create(
        model=MODEL, input="Anything?", tools=[tool], stream=True
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[2:6] == [
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.failed",
        "response.output_item.done",
    ]
    final = events[-1]
    assert final.type == "response.completed"
    listed, message = _check_items(final.response)
    assert (listed["tools"], "could not" in listed["error"]) == ([], True)
    assert message["content"][0]["text"] == "No tools today."
    assert "tools" not in _asked(fake_provider)[0]  # nothing to offer


async def test_a_streamed_approval_request(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.responder = tool_caller(UTC)
    tools: Any = [_time(require_approval={"always": {"tool_names": ["get_current_time"]}})]
    stream = await client.responses.create(
        model=MODEL, input="Time in UTC?", tools=tools, stream=True
    )
    events = [event async for event in stream]
    for event in events:
        EVENTS.validate_python(event.model_dump(mode="json", exclude_unset=True))
    opened = [e for e in events if e.type == "response.output_item.added"]
    closed = [e for e in events if e.type == "response.output_item.done"]
    assert [e.item.type for e in closed] == ["mcp_list_tools", "message", "mcp_approval_request"]
    assert opened[-1].item.type == "mcp_approval_request"
    assert json.loads(closed[-1].item.arguments) == UTC  # type: ignore[union-attr]
    assert not [k for k in (e.type for e in events) if k.startswith("response.mcp_call")]
    assert events[-1].type == "response.completed"
    _check_items(events[-1].response)

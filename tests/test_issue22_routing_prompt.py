"""Issue 22, point 3: a panel's routing prompt was a Python format string the client wrote.

`{names:>50000000}` made every routing prompt 50 MB; `{question.nope}` answered 500. Now
only `{agents}`, `{history}`, `{question}` and `{names}` are filled in, as plain text;
anything else in braces is refused when the panel is set (422 naming `panel.prompt`), a
prompt stored before that renders it literally, and a filled prompt is bounded.
"""

from __future__ import annotations

import json

import httpx
import pytest

from symposia.container import Container
from symposia.domain.models import Message, Panel, PanelAgent
from symposia.orchestration import routing
from symposia.providers.base import CompletionRequest
from symposia.providers.scripted import Script, ScriptedProvider
from tests.sse import chat

SUPERVISOR_MODEL = "scripted/router"
AGENTS = [
    {"name": "billing", "description": "Invoices.", "model": "scripted/echo"},
    {"name": "tech", "description": "Errors.", "model": "scripted/echo"},
]
HOSTILE = [
    "{names:>50000000} {question}",
    "{question.nope}",
    "{question[0]} {question}",
    "{question!r}",
    "{0} {question}",
    "{} {question}",
    "a lone { brace {question}",
    "{question} and {agents}" + " {agents}" * 2000,  # each copy adds the agents' text
]


@pytest.fixture(autouse=True)
def _router(scripted: ScriptedProvider) -> None:
    scripted.add_script("router", Script(chunks=['{"agent": "tech", "reason": "r"}']))


@pytest.mark.parametrize("prompt", HOSTILE, ids=range(len(HOSTILE)))
async def test_a_routing_prompt_with_more_than_the_placeholders_is_422(
    client: httpx.AsyncClient, prompt: str
) -> None:
    panel = {"agents": AGENTS, "prompt": prompt}
    created = await client.post(
        "/api/conversations", json={"default_model": SUPERVISOR_MODEL, "panel": panel}
    )
    assert created.status_code == 422, created.text
    assert created.json()["field"] == "panel.prompt"
    assert len(created.content) < 2000
    assert (await client.get("/api/conversations")).json()["items"] == []
    plain = await client.post("/api/conversations", json={"default_model": SUPERVISOR_MODEL})
    patched = await client.patch(f"/api/conversations/{plain.json()['id']}", json={"panel": panel})
    assert patched.status_code == 422, patched.text
    assert patched.json()["field"] == "panel.prompt"


async def test_placeholders_are_filled_as_plain_text_and_braces_doubled_stay_braces(
    client: httpx.AsyncClient, scripted: ScriptedProvider
) -> None:
    seen: list[str] = []

    def router(request: CompletionRequest) -> str:
        seen.append(request.messages[0].content)
        return json.dumps({"agent": "tech", "reason": "r"})

    scripted.add_script("router", Script(respond=router))
    prompt = 'Pick from {names} for {question}; answer {{"agent": ...}}'
    created = await client.post(
        "/api/conversations",
        json={"default_model": SUPERVISOR_MODEL, "panel": {"agents": AGENTS, "prompt": prompt}},
    )
    assert created.status_code == 201, created.text
    # A question holding format syntax is text, never interpreted.
    await chat(client, conversation_id=created.json()["id"], message="{names:>9} {agents}")
    assert seen == [
        'Pick from billing, tech, supervisor for {names:>9} {agents}; answer {"agent": ...}'
    ]


async def test_a_prompt_stored_before_the_check_renders_literally_and_bounded(
    client: httpx.AsyncClient, container: Container, scripted: ScriptedProvider
) -> None:
    seen: list[str] = []

    def router(request: CompletionRequest) -> str:
        seen.append(request.messages[0].content)
        return json.dumps({"agent": "billing", "reason": "r"})

    scripted.add_script("router", Script(respond=router))
    created = await client.post(
        "/api/conversations", json={"default_model": SUPERVISOR_MODEL, "panel": {"agents": AGENTS}}
    )
    conversation_id = created.json()["id"]
    stored = created.json()["panel"]
    for legacy in ("{names:>50000000} {question}", "{question.nope}", "{agents}" * 20_000):
        await container.conversations.repo.update(
            conversation_id, {"panel": {**stored, "prompt": legacy}}
        )
        frames = await chat(client, conversation_id=conversation_id, message="hi")
        assert frames[0].event == "routing", frames
        assert frames[-1].event == "done"
    assert seen[0] == "{names:>50000000} hi"
    assert seen[1] == "{question.nope}"
    assert len(seen[2]) == routing.ROUTING_PROMPT_MAX


def test_the_default_prompt_passes_its_own_check_and_fills_every_placeholder() -> None:
    agents = tuple(PanelAgent(f"a{i}", "d" * 2000, "scripted/echo") for i in range(8))
    panel = Panel(agents=agents, prompt=routing.DEFAULT_PROMPT)
    assert routing.check_prompt(panel) is None
    text = routing.render(panel, [Message("user", "ana", "earlier")], "why?")
    assert "{" not in text.replace('{"agent"', "")
    assert "ana: earlier" in text
    assert "why?" in text


POLICY_PROMPTS = [
    ("selector", "prompt", "{candidates} {candidates:>50000000}"),
    ("selector", "prompt", "{candidates} {topic.nope}"),
    ("selector", "prompt", "{candidates}" + "{history}" * 3000),  # over TEMPLATE_MAX
    ("rounds", "judge_prompt", "{answers} {topic:>50000000}"),
    ("rounds", "judge_prompt", "{answers} {topic[0]}"),
]


@pytest.mark.parametrize(("policy", "key", "prompt"), POLICY_PROMPTS)
async def test_a_policy_prompt_is_no_format_string_either(
    client: httpx.AsyncClient, policy: str, key: str, prompt: str
) -> None:
    """The selector's `prompt` and the rounds judge's `judge_prompt` are client templates
    too: the same placeholders-only rule, 422 naming the setting."""
    bots = [{"name": "A", "model": "scripted/echo"}, {"name": "B", "model": "scripted/echo"}]
    config: dict[str, object] = {key: prompt}
    if policy == "rounds":
        config["aggregation"] = "judge"
    body = {"topic": "t", "bots": bots, "policy": policy, "policy_config": config}
    response = await client.post("/api/run", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == f"policy_config.{key}"
    assert len(response.content) < 2000
    assert (await client.get("/api/runs")).json()["items"] == []


def test_a_stored_policy_prompt_renders_literally_and_bounded() -> None:
    """A selector prompt stored before the check renders its format syntax as text."""
    from symposia.domain.models import BotConfig, Run
    from symposia.orchestration import prompt_template
    from symposia.orchestration.policies import selector

    bots = [BotConfig(name=n, model="scripted/echo", system_prompt="") for n in "AB"]
    run = Run(topic="t", bots=bots, max_turns=2)
    text = selector._render(run, "{candidates:>50000000} {topic.x} {candidates}", [1])
    assert text == "{candidates:>50000000} {topic.x} B"
    huge = selector._render(run, "{history}" * 20_000, [0])
    assert len(huge) == prompt_template.FILLED_MAX

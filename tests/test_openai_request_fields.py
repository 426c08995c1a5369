"""Issue 23, fidelity point 1: every field of OpenAI's request schemas is placed.

The fields come from OpenAI's published spec (`tests/openapi/openai_v1.json`): a field
the spec gains fails `test_every_field_of_the_spec_is_placed` until `request_fields`
places it. Each field then goes through the official `openai` SDK to the fake upstream:
an OpenAI-compatible one receives it as sent, Anthropic its translation, and a provider
that cannot honour it answers a 400 whose `param` names it, before any upstream call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai
import pytest

from symposia.container import Container
from symposia.providers.anthropic_adapter import AnthropicAdapter
from symposia.providers.bedrock import BedrockAdapter
from symposia.providers.local import LocalProvider
from symposia.providers.openai_adapter import OpenAIAdapter
from symposia.providers.request_fields import (
    CHAT_COMPLETIONS,
    KINDS,
    NEUTRAL,
    OPTIONS,
    REFUSE,
    RESPONSES,
    VERBATIM,
    Row,
)
from symposia.providers.scripted import ScriptedProvider
from tests.fakes.provider_server import FakeProviderServer, Reply
from tests.openapi.schemas import properties
from tests.test_openai_compat import HELLO, api_key, client, compat, compat_app, server

__all__ = ["api_key", "client", "compat", "compat_app", "server"]  # the fixtures used here

OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-haiku-4-5"
LOCAL_MODEL = "local/smollm2"
DOCS = Path(__file__).parents[1] / "docs" / "openai.md"

# A value of each chat field that asks for something (no neutral value): what the SDK sends.
SAMPLES: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "wav"},
    "frequency_penalty": 0.5,
    "logit_bias": {"50256": -100},
    "max_completion_tokens": 7,
    "metadata": {"team": "a"},
    "modalities": ["text", "audio"],
    "moderation": {"model": "omni-moderation-latest"},
    "prediction": {"type": "content", "content": "Hello"},
    "presence_penalty": -0.5,
    "prompt_cache_key": "k1",
    "prompt_cache_options": {"ttl": "30m"},
    "prompt_cache_retention": "24h",
    "reasoning_effort": "low",
    "safety_identifier": "s1",
    "service_tier": "flex",
    "store": True,
    "user": "u1",
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}
# What Anthropic is sent instead of a sample its translation refuses (tested apart).
ANTHROPIC_SAMPLES: dict[str, Any] = {"service_tier": "default"}
# What Anthropic receives for each field it translates (the others it refuses or ignores).
ANTHROPIC: dict[str, tuple[str, Any]] = {
    "max_completion_tokens": ("max_tokens", 7),
    "reasoning_effort": ("output_config", {"effort": "low"}),
    "safety_identifier": ("metadata", {"user_id": "s1"}),
    "service_tier": ("service_tier", "standard_only"),
    "user": ("metadata", {"user_id": "u1"}),
}
# Chat fields read into the model call, and the provider feature each asks for.
FEATURES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
    "tools": "tools",
    "tool_choice": "tools",
    "functions": "tools",
    "function_call": "tools",
    "response_format": "response_format",
}
PROVIDER_CLASSES = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "bedrock": BedrockAdapter,
    "local": LocalProvider,
}
# A Responses field no provider honours, with a value that asks for something.
RESPONSES_SAMPLES: dict[str, Any] = {
    "background": True,
    "context_management": [{"type": "compaction"}],
    "conversation": "conv_1",
    "include": ["reasoning.encrypted_content"],
    "max_tool_calls": 3,
    "prompt": {"id": "pmpt_1"},
    "top_logprobs": 2,
    "truncation": "auto",
}


def _refused_everywhere(row: Row) -> bool:
    return all(row[kind] == REFUSE for kind in KINDS)


async def _ask(client: openai.AsyncOpenAI, model: str, **fields: Any) -> Any:
    return await client.chat.completions.create(model=model, messages=HELLO, **fields)  # type: ignore[arg-type]


async def _refused(client: openai.AsyncOpenAI, model: str, name: str, **fields: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await _ask(client, model, **fields)
    assert info.value.param == name, info.value.body
    assert info.value.code == "unsupported_parameter"


# --- the tables against the spec --------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "table"),
    [("CreateChatCompletionRequest", CHAT_COMPLETIONS), ("CreateResponse", RESPONSES)],
)
def test_every_field_of_the_spec_is_placed(schema: str, table: Mapping[str, Row]) -> None:
    fields = properties(schema)
    assert sorted(fields - set(table)) == [], "fields of the spec without a placement"
    assert sorted(set(table) - fields) == [], "placements of fields the spec no longer has"
    for name, row in table.items():
        assert set(row) == set(KINDS), name
        assert all(row.values()), name


def test_every_option_has_a_sample_the_tests_send() -> None:
    assert set(SAMPLES) == OPTIONS
    for name, value in SAMPLES.items():
        assert value not in NEUTRAL.get(name, ()), name


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_a_read_field_is_refused_where_the_provider_lacks_its_feature(name: str) -> None:
    kinds: dict[str, frozenset[str]] = {
        kind: cls.features for kind, cls in PROVIDER_CLASSES.items()
    }
    kinds["scripted"] = ScriptedProvider().features
    for kind, features in kinds.items():
        refused = CHAT_COMPLETIONS[name][kind] == REFUSE  # type: ignore[index]
        assert refused == (FEATURES[name] not in features), (name, kind)


# --- OpenAI-compatible upstreams: as sent -----------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIONS))
async def test_an_openai_upstream_receives_each_field_as_sent(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, name: str
) -> None:
    value = SAMPLES[name]
    if CHAT_COMPLETIONS[name]["openai"] == REFUSE:
        await _refused(client, OPENAI_MODEL, name, **{name: value})
        assert fake_provider.requests_to("openai") == []
        return
    fake_provider.enqueue("openai", Reply())
    await _ask(client, OPENAI_MODEL, **{name: value})
    (sent,) = fake_provider.requests_to("openai")
    assert sent.body[name] == value


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
# The fields read into the model call that an OpenAI upstream gets back under their name.
READ_SAMPLES: dict[str, Any] = {
    "temperature": 0.3,
    "top_p": 0.8,
    "max_tokens": 5,
    "stop": ["zzz"],
    "seed": 3,
    "logprobs": True,
    "top_logprobs": 2,
    "tools": [TOOL],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "response_format": {"type": "json_object"},
}


@pytest.mark.parametrize("name", sorted(READ_SAMPLES))
async def test_an_openai_upstream_receives_each_read_field_as_sent(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, name: str
) -> None:
    assert CHAT_COMPLETIONS[name]["openai"] == VERBATIM
    fields = {name: READ_SAMPLES[name]}
    if name in ("tool_choice", "parallel_tool_calls"):
        fields["tools"] = [TOOL]
    fake_provider.enqueue("openai", Reply())
    await _ask(client, OPENAI_MODEL, **fields)
    (sent,) = fake_provider.requests_to("openai")
    assert {n: sent.body[n] for n in fields} == fields


async def test_max_completion_tokens_is_not_rewritten_to_max_tokens(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply(), Reply(), Reply())
    await _ask(client, OPENAI_MODEL, max_completion_tokens=7)
    await _ask(client, OPENAI_MODEL, max_tokens=5)
    await _ask(client, OPENAI_MODEL, max_completion_tokens=7, max_tokens=5)
    new, old, both = (r.body for r in fake_provider.requests_to("openai"))
    assert (new["max_completion_tokens"], "max_tokens" in new) == (7, False)
    assert (old["max_tokens"], "max_completion_tokens" in old) == (5, False)
    assert (both["max_completion_tokens"], both["max_tokens"]) == (7, 5)


async def test_all_fields_at_once_streamed_reach_an_openai_upstream(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    sent = {n: v for n, v in SAMPLES.items() if CHAT_COMPLETIONS[n]["openai"] != REFUSE}
    fake_provider.enqueue("openai", Reply(tokens=["Hi"]))
    stream = await _ask(client, OPENAI_MODEL, stream=True, **sent)
    assert [c async for c in stream]
    (received,) = fake_provider.requests_to("openai")
    assert {n: received.body.get(n) for n in sent} == sent


async def test_a_field_outside_the_spec_reaches_an_openai_upstream_only(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    """A vendor's own field (vLLM's `top_k`), sent with the SDK's extra_body."""
    fake_provider.enqueue("openai", Reply())
    await _ask(client, OPENAI_MODEL, extra_body={"top_k": 5})
    assert fake_provider.requests_to("openai")[0].body["top_k"] == 5
    await _refused(client, ANTHROPIC_MODEL, "top_k", extra_body={"top_k": 5})
    assert fake_provider.requests_to("anthropic") == []


# --- Anthropic: translated or refused ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIONS))
async def test_anthropic_translates_each_field_or_refuses_it(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, name: str
) -> None:
    value = ANTHROPIC_SAMPLES.get(name, SAMPLES[name])
    placement = CHAT_COMPLETIONS[name]["anthropic"]
    if placement == REFUSE:
        await _refused(client, ANTHROPIC_MODEL, name, **{name: value})
        assert fake_provider.requests_to("anthropic") == []
        return
    fake_provider.enqueue("anthropic", Reply())
    await _ask(client, ANTHROPIC_MODEL, **{name: value})
    (sent,) = fake_provider.requests_to("anthropic")
    if placement.startswith("ignored"):
        assert name not in sent.body
    else:
        assert name in ANTHROPIC, f"{name} is translated ({placement}): say what to expect"
        key, expected = ANTHROPIC[name]
        assert sent.body[key] == expected


@pytest.mark.parametrize(
    ("name", "value"), [("reasoning_effort", "minimal"), ("service_tier", "flex")]
)
async def test_anthropic_refuses_a_value_it_has_no_translation_for(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, name: str, value: str
) -> None:
    await _refused(client, ANTHROPIC_MODEL, name, **{name: value})
    assert fake_provider.requests_to("anthropic") == []


async def test_neutral_values_and_nulls_are_honoured_where_the_field_is_refused(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    chat = {n: values[0] for n, values in NEUTRAL.items() if n in OPTIONS and values}
    assert chat  # store false, logit_bias {}, modalities ["text"], ...
    fake_provider.enqueue("anthropic", Reply(), Reply())
    await _ask(client, ANTHROPIC_MODEL, **chat)
    await _ask(client, ANTHROPIC_MODEL, extra_body=dict.fromkeys(OPTIONS))
    assert len(fake_provider.requests_to("anthropic")) == 2


# --- the local model: refused before it runs --------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(n for n in OPTIONS if CHAT_COMPLETIONS[n]["local"] == REFUSE)
)
async def test_the_local_model_refuses_what_it_cannot_honour(
    client: openai.AsyncOpenAI, name: str
) -> None:
    await _refused(client, LOCAL_MODEL, name, **{name: SAMPLES[name]})


async def test_the_local_model_takes_the_penalties_as_llama_cpp_does(
    compat: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp")
    local = compat.providers.get("local")
    assert isinstance(local, LocalProvider)
    taken: dict[str, Any] = {}

    class Llama:
        def generate(self, tokens: list[int], **sampling: Any) -> Any:
            taken.update(sampling)
            return iter(())

    monkeypatch.setattr(local, "_ensure_loaded", Llama)
    monkeypatch.setattr(local, "_fit", lambda *_: ([1, 2], 16))
    from symposia.providers.base import ChatMessage, CompletionRequest

    options = {"frequency_penalty": 0.5, "presence_penalty": -0.5}
    request = CompletionRequest("smollm2", [ChatMessage("user", "hi")], options=options)
    local._run(request, lambda _: None, __import__("threading").Event())
    assert {k: taken[k] for k in options} == options


# --- the Responses API --------------------------------------------------------------------


async def test_responses_fields_reach_an_openai_upstream_under_their_chat_names(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("openai", Reply())
    await client.responses.create(
        model=OPENAI_MODEL,
        input="hi",
        user="u1",
        safety_identifier="s1",
        service_tier="flex",
        prompt_cache_key="k1",
        prompt_cache_retention="24h",
        reasoning={"effort": "low"},
        text={"verbosity": "low"},
        max_output_tokens=9,
        store=False,
    )
    (sent,) = fake_provider.requests_to("openai")
    body = sent.body
    assert {
        "user": "u1",
        "safety_identifier": "s1",
        "service_tier": "flex",
        "prompt_cache_key": "k1",
        "prompt_cache_retention": "24h",
        "reasoning_effort": "low",
        "verbosity": "low",
        "max_completion_tokens": 9,
    }.items() <= body.items()
    assert "max_tokens" not in body


async def test_responses_fields_reach_anthropic_translated_or_refused_by_their_names(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer
) -> None:
    fake_provider.enqueue("anthropic", Reply())
    await client.responses.create(
        model=ANTHROPIC_MODEL, input="hi", user="u1", reasoning={"effort": "high"}, store=False
    )
    (sent,) = fake_provider.requests_to("anthropic")
    assert (sent.body["metadata"], sent.body["output_config"]) == (
        {"user_id": "u1"},
        {"effort": "high"},
    )
    for fields, name in [
        ({"text": {"verbosity": "low"}}, "text.verbosity"),
        ({"reasoning": {"effort": "minimal"}}, "reasoning.effort"),
        ({"service_tier": "flex"}, "service_tier"),
    ]:
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(model=ANTHROPIC_MODEL, input="hi", **fields)
        assert info.value.param == name
    assert len(fake_provider.requests_to("anthropic")) == 1


@pytest.mark.parametrize("name", sorted(n for n, r in RESPONSES.items() if _refused_everywhere(r)))
async def test_a_responses_field_no_provider_honours_is_refused_by_name(
    client: openai.AsyncOpenAI, fake_provider: FakeProviderServer, name: str
) -> None:
    body = {"model": OPENAI_MODEL, "input": "hi", name: RESPONSES_SAMPLES[name]}
    with pytest.raises(openai.BadRequestError) as info:
        await client.post("/responses", cast_to=object, body=body)
    assert info.value.param == name
    assert fake_provider.requests_to("openai") == []


# --- the documentation ----------------------------------------------------------------------


def markdown_table(table: Mapping[str, Row]) -> str:
    """The placement table as docs/openai.md prints it."""
    lines = [
        "| field | " + " | ".join(KINDS) + " |",
        "|---" * (len(KINDS) + 1) + "|",
    ]
    for name in sorted(table):
        cells = [table[name][kind] for kind in KINDS]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@pytest.mark.parametrize(("label", "table"), [("chat", CHAT_COMPLETIONS), ("responses", RESPONSES)])
def test_the_docs_print_the_placement_tables(label: str, table: Mapping[str, Row]) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- fields:{label} -->\n(.*?)\n<!-- /fields:{label} -->", docs, re.DOTALL)
    assert found is not None, f"docs/openai.md has no fields:{label} table"
    assert found.group(1) == markdown_table(table), "docs/openai.md is behind request_fields"

"""Where every field of OpenAI's request bodies goes, for each kind of provider.

One table per endpoint (`CHAT_COMPLETIONS`, `RESPONSES`), one row per field of OpenAI's
published schema, one placement per provider kind, so that no field is dropped in
silence. A placement is `VERBATIM` (sent to the upstream under the same name, as the client
sent it), `REFUSE` (a 400 in OpenAI's error shape naming the field), or any other text:
what the field becomes there (a translation, or what Symposia itself does with it). The
tests enumerate the spec's properties against these tables and docs/openai.md prints them.

The chat fields Symposia does not read itself (`OPTIONS`) travel untouched in
`CompletionRequest.options`: an OpenAI-compatible adapter merges that dict into its body,
the other adapters translate the ones they know, and `refused(kind)` is what
`CompletionService.prepare` refuses, from the few fields a request actually sent. A field
sent as null, or as the value that is the provider's behaviour anyway (`NEUTRAL`), is
honoured everywhere: it asks for nothing the provider does not do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

ProviderKind = Literal["openai", "anthropic", "bedrock", "local", "scripted"]
KINDS: Final = get_args(ProviderKind)

VERBATIM: Final = "pass"
REFUSE: Final = "refuse"

Row = Mapping[ProviderKind, str]


def _all(placement: str) -> Row:
    return dict.fromkeys(KINDS, placement)


def _row(
    openai: str, anthropic: str, bedrock: str, local: str, scripted: str = "ignored: a script"
) -> Row:
    return {
        "openai": openai,
        "anthropic": anthropic,
        "bedrock": bedrock,
        "local": local,
        "scripted": scripted,
    }


def _openai_only(other: str = REFUSE) -> Row:
    return _row(VERBATIM, other, other, other)


CACHE_HINT = "ignored: a prompt-cache hint, which cannot change the answer"
NO_USER_FIELD = "ignored: the provider has no per-user field"
STREAMED = "by Symposia (the upstream call always streams)"

# The chat-completions fields read into CompletionRequest's own attributes, or by
# Symposia itself; every other field of the schema is one of OPTIONS.
TYPED: Final = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "stream",
        "stream_options",
        "n",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "seed",
        "logprobs",
        "top_logprobs",
        "response_format",
    }
)

CHAT_COMPLETIONS: Final[Mapping[str, Row]] = {
    "audio": _all(REFUSE),  # audio output is not relayed: the answer would be empty
    "frequency_penalty": _row(VERBATIM, REFUSE, REFUSE, "frequency_penalty (llama.cpp)"),
    "function_call": _row(
        "tool_choice (legacy functions are read as tools)",
        "tool_choice",
        "toolConfig.toolChoice",
        REFUSE,
        "tool_choice",
    ),
    "functions": _row("tools", "tools", "toolConfig.tools", REFUSE, "tools"),
    "logit_bias": _openai_only(),
    "logprobs": _row(VERBATIM, REFUSE, REFUSE, REFUSE, REFUSE),
    "max_completion_tokens": _row(
        VERBATIM, "max_tokens", "inferenceConfig.maxTokens", "tokens generated", "max_tokens"
    ),
    "max_tokens": _row(
        VERBATIM, "max_tokens", "inferenceConfig.maxTokens", "tokens generated", "max_tokens"
    ),
    "messages": _row(
        "messages (text parts joined; other parts refused)",
        "system + messages",
        "system + messages",
        "the model's chat template",
        "the script's input",
    ),
    "metadata": _openai_only(),
    "modalities": _all(REFUSE),  # ["text"] is neutral, passed to OpenAI-compatible ones
    "model": _all("routing: `provider/` picks the provider, the rest is its model"),
    "moderation": _openai_only(),
    "n": _all(REFUSE),  # 1 is neutral: every answer is one choice
    "parallel_tool_calls": _row(
        VERBATIM,
        "tool_choice.disable_parallel_tool_use",
        "true only (false refused)",
        "ignored without tools (tools refused)",
        "recorded",
    ),
    "prediction": _openai_only(),
    "presence_penalty": _row(VERBATIM, REFUSE, REFUSE, "presence_penalty (llama.cpp)"),
    "prompt_cache_key": _openai_only(CACHE_HINT),
    "prompt_cache_options": _openai_only(CACHE_HINT),
    "prompt_cache_retention": _openai_only(CACHE_HINT),
    "reasoning_effort": _row(
        VERBATIM,
        "output_config.effort (low, medium, high, xhigh, max; others refused)",
        REFUSE,
        REFUSE,
    ),
    "response_format": _row(
        VERBATIM,
        "a forced tool whose input is the answer",
        "a forced tool whose input is the answer",
        "a grammar (constrained decoding)",
        "recorded",
    ),
    "safety_identifier": _row(VERBATIM, "metadata.user_id", NO_USER_FIELD, NO_USER_FIELD),
    "seed": _row(VERBATIM, REFUSE, REFUSE, REFUSE, "ignored: a script is always the same"),
    "service_tier": _row(
        VERBATIM,
        "service_tier (auto → auto, default → standard_only; others refused)",
        REFUSE,
        REFUSE,
    ),
    "stop": _row(
        VERBATIM,
        "stop_sequences",
        "inferenceConfig.stopSequences",
        "cut by Symposia at the first stop sequence",
        "cut by Symposia at the first stop sequence",
    ),
    "store": _openai_only(),  # false is neutral: the others store nothing
    "stream": _all(STREAMED),
    "stream_options": _all("include_usage: by Symposia"),
    "temperature": _row(
        VERBATIM,
        REFUSE,
        "inferenceConfig.temperature (at most 1)",
        "temp (llama.cpp)",
        "recorded",
    ),
    "tool_choice": _row(VERBATIM, "tool_choice", "toolConfig.toolChoice", REFUSE, "tool_choice"),
    "tools": _row(VERBATIM, "tools", "toolConfig.tools", REFUSE, "tools"),
    "top_logprobs": _row(VERBATIM, REFUSE, REFUSE, REFUSE, REFUSE),
    "top_p": _row(VERBATIM, REFUSE, "inferenceConfig.topP", "top_p (llama.cpp)", "recorded"),
    "user": _row(VERBATIM, "metadata.user_id", NO_USER_FIELD, NO_USER_FIELD),
    "verbosity": _openai_only(),
    "web_search_options": _openai_only(),
}

OPTIONS: Final = frozenset(CHAT_COMPLETIONS) - TYPED

# Values that ask for what a provider does anyway: honoured wherever the field is refused.
NEUTRAL: Final[Mapping[str, tuple[Any, ...]]] = {
    "audio": (),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "logit_bias": ({},),
    "metadata": ({},),
    "modalities": (["text"],),
    "store": (False,),
    "service_tier": ("auto", "default"),
    "verbosity": ("medium",),
    # Responses API
    "background": (False,),
    "include": ([],),
    "top_logprobs": (0,),
    "truncation": ("disabled",),
}

RESPONSES: Final[Mapping[str, Row]] = {
    "background": _all(REFUSE),
    "context_management": _all(REFUSE),
    "conversation": _all(REFUSE),
    "include": _all(REFUSE),
    "input": _all("messages"),
    "instructions": _all("a system message"),
    "max_output_tokens": _row(
        "max_completion_tokens",
        "max_tokens",
        "inferenceConfig.maxTokens",
        "tokens generated",
        "max_tokens",
    ),
    "max_tool_calls": _all(REFUSE),
    "metadata": _all("kept with the stored response, not sent"),
    "model": CHAT_COMPLETIONS["model"],
    "moderation": CHAT_COMPLETIONS["moderation"],
    "parallel_tool_calls": CHAT_COMPLETIONS["parallel_tool_calls"],
    "previous_response_id": _all("the stored chain, sent as messages"),
    "prompt": _all(REFUSE),
    "prompt_cache_key": CHAT_COMPLETIONS["prompt_cache_key"],
    "prompt_cache_options": CHAT_COMPLETIONS["prompt_cache_options"],
    "prompt_cache_retention": CHAT_COMPLETIONS["prompt_cache_retention"],
    "reasoning": _row(
        "reasoning_effort (reasoning.effort; a summary refused)",
        "output_config.effort (low, medium, high, xhigh, max; others refused)",
        REFUSE,
        REFUSE,
    ),
    "safety_identifier": CHAT_COMPLETIONS["safety_identifier"],
    "service_tier": CHAT_COMPLETIONS["service_tier"],
    "store": _all("whether Symposia stores the response (GET, previous_response_id)"),
    "stream": _all(STREAMED),
    "stream_options": _all("ignored: no obfuscation padding is sent"),
    "temperature": CHAT_COMPLETIONS["temperature"],
    "text": _row(
        "response_format (text.format) and verbosity (text.verbosity)",
        "text.format as response_format; text.verbosity refused",
        "text.format as response_format; text.verbosity refused",
        "text.format as response_format; text.verbosity refused",
        "recorded",
    ),
    "tool_choice": CHAT_COMPLETIONS["tool_choice"],
    "tools": _row(
        "tools (function tools; mcp tools run by Symposia; others refused)",
        "tools (function tools; mcp tools run by Symposia; others refused)",
        "toolConfig.tools (function tools; mcp tools run by Symposia; others refused)",
        REFUSE,
        "tools",
    ),
    "top_logprobs": _all(REFUSE),
    "top_p": CHAT_COMPLETIONS["top_p"],
    "truncation": _all(REFUSE),  # "disabled" is neutral: nothing is ever truncated
    "user": CHAT_COMPLETIONS["user"],
}


# The values a translation knows, per kind and field: any other value is refused.
TRANSLATED_VALUES: Final[Mapping[ProviderKind, Mapping[str, Mapping[str, str]]]] = {
    "anthropic": {
        "reasoning_effort": {e: e for e in ("low", "medium", "high", "xhigh", "max")},
        "service_tier": {"auto": "auto", "default": "standard_only"},
    },
}


def neutral(name: str, value: Any) -> bool:
    """Whether `value` of `name` asks for nothing a provider would not do anyway."""
    return value is None or value in NEUTRAL.get(name, ())


def _refused(kind: ProviderKind) -> frozenset[str]:
    return frozenset(name for name in OPTIONS if CHAT_COMPLETIONS[name][kind] == REFUSE)


# Per kind, the OPTIONS it refuses (a neutral value aside); fields outside the schema
# (a vendor's own, sent with the SDK's extra_body) reach an OpenAI-compatible upstream
# only.
REFUSED: Final[Mapping[ProviderKind, frozenset[str]]] = {kind: _refused(kind) for kind in KINDS}
PASSES_UNKNOWN: Final = frozenset({"openai"})


def refused_option(kind: ProviderKind, options: Mapping[str, Any]) -> str | None:
    """The first field of `options` a provider of `kind` cannot honour, or None. Runs
    over the fields sent, which are few: nothing is done for a request that sent none."""
    refused, translated = REFUSED[kind], TRANSLATED_VALUES.get(kind, {})
    for name, value in options.items():
        if name in refused or (name not in OPTIONS and kind not in PASSES_UNKNOWN):
            if not neutral(name, value):
                return name
        elif name in translated and value is not None and value not in translated[name]:
            return name
    return None

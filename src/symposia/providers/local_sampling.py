"""How the local model samples: llama.cpp's settings, tuned for SmolLM2-135M.

A model this small loops ("it is important to note that it is important…") and drifts
at llama.cpp's defaults. These are defaults only: a request's own `temperature` and
`top_p` stand, and a request that sets `frequency_penalty` or `presence_penalty` (the
OpenAI names, which llama.cpp takes in the same sense) gets those instead of the repeat
penalty. docs/models.md lists the values.
"""

from __future__ import annotations

import json
from typing import Any

from symposia.providers.base import CompletionRequest, ResponseFormat

TEMPERATURE = 0.6  # lower than llama.cpp's 0.8: fewer stray words, still not one answer
TOP_P = 0.9
TOP_K = 40
MIN_P = 0.05
REPEAT_PENALTY = 1.15  # over the last 64 tokens (llama-cpp-python's window)
PENALTIES = ("frequency_penalty", "presence_penalty")


def sampling(request: CompletionRequest) -> dict[str, Any]:
    """The keyword arguments of `Llama.generate` for `request`."""
    settings: dict[str, Any] = {
        "temp": TEMPERATURE if request.temperature is None else request.temperature,
        "top_p": TOP_P if request.top_p is None else request.top_p,
        "top_k": TOP_K,
        "min_p": MIN_P,
    }
    penalties = {
        name: request.options[name] for name in PENALTIES if request.options.get(name) is not None
    }
    settings.update(penalties or {"repeat_penalty": REPEAT_PENALTY})
    if request.response_format is not None:
        settings["grammar"] = _grammar(request.response_format)
    return settings


def _grammar(fmt: ResponseFormat) -> Any:
    """The grammar that lets the model write only what `fmt` allows: JSON following the
    schema, or any JSON object."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if fmt.type == "json_schema" and fmt.schema:
        return LlamaGrammar.from_json_schema(json.dumps(fmt.schema), verbose=False)
    return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


__all__ = ["sampling"]

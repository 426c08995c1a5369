"""Copy the schemas the `/v1` conformance tests check out of OpenAI's published spec.

Usage: `python -m tests.openapi.extract OPENAPI_JSON COMMIT > tests/openapi/openai_v1.json`,
with `openapi.json` of github.com/openai/openai-openapi at COMMIT. The schemas are copied
verbatim, with everything they reference; `tests/openapi/schemas.py` reads them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

REPOSITORY = "https://github.com/openai/openai-openapi"
ROOTS = (
    "CreateChatCompletionRequest",
    "CreateResponse",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ErrorResponse",
    "Model",
    "ListModelsResponse",
    "Response",
    "ResponseCreatedEvent",
    "ResponseInProgressEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseContentPartAddedEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseContentPartDoneEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseCompletedEvent",
    "ResponseIncompleteEvent",
    "ResponseFailedEvent",
)
REF_PREFIX = "#/components/schemas/"


def referenced(schemas: dict[str, Any], roots: tuple[str, ...]) -> list[str]:
    """The roots and every schema they reach through `$ref`, sorted."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        stack: list[Any] = [schemas[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    pending.append(ref.removeprefix(REF_PREFIX))
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return sorted(seen)


def extract(spec: dict[str, Any], commit: str) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    return {
        "x-source": {
            "repository": REPOSITORY,
            "file": "openapi.json",
            "commit": commit,
            "info.version": spec["info"]["version"],
            "openapi": spec["openapi"],
            "roots": list(ROOTS),
        },
        "components": {"schemas": {name: schemas[name] for name in referenced(schemas, ROOTS)}},
    }


def main() -> None:
    path, commit = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as file:
        spec = json.load(file)
    json.dump(extract(spec, commit), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Validators for OpenAI's published `/v1` schemas, kept in `openai_v1.json`.

The copy is verbatim (its `x-source` names the repository, commit and spec version). The
spec declares OpenAPI 3.1, whose schemas are JSON Schema 2020-12, yet it still marks
some fields with OpenAPI 3.0's `nullable: true` (a stream chunk's `usage`, its choices'
`finish_reason` and `logprobs`), which 2020-12 ignores. OpenAI sends `null` there, and its
SDKs accept it, so each such schema is read here as `anyOf: [itself, null]`, the one
liberty taken.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SPEC_FILE = Path(__file__).with_name("openai_v1.json")
REF_PREFIX = "#/components/schemas/"


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return loaded


@cache
def validator(name: str) -> jsonschema_rs.Validator:
    """A validator of `#/components/schemas/<name>`, references resolved in the copy."""
    components = _nullable(spec()["components"])
    assert name in components["schemas"], f"{name} is not in {SPEC_FILE.name}"
    return jsonschema_rs.Draft202012Validator({"$ref": REF_PREFIX + name, "components": components})


def conforms(name: str, instance: Any) -> None:
    """Fail with every violation of the schema `name`, each with where it is."""
    errors = [
        f"{list(e.instance_path)}: {e.message}" for e in validator(name).iter_errors(instance)
    ]
    assert not errors, f"not an OpenAI {name}: {errors}\n{json.dumps(instance)[:2000]}"


def properties(name: str) -> set[str]:
    """The property names of the schema `name`, through its `allOf` and `$ref`s: for a
    request body, every field a client may send."""
    schemas = spec()["components"]["schemas"]
    found: set[str] = set()
    pending: list[Any] = [schemas[name]]
    while pending:
        node = pending.pop()
        if "$ref" in node:
            pending.append(schemas[node["$ref"].removeprefix(REF_PREFIX)])
            continue
        pending.extend(node.get("allOf", ()))
        found.update(node.get("properties", {}))
    return found

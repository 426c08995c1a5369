"""`TextTemplate` reads a plain chunk's text exactly as parsing it would, and leaves
every other chunk to the parser."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from symposia.providers.text_chunks import TextTemplate


def _chunk(delta: dict[str, Any], **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
    choice.update(extra.pop("choice", {}))
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return orjson.dumps({**body, "choices": [choice], **extra})


PAYLOADS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": " first"}),
    _chunk({"content": " plain"}),
    _chunk({"content": ""}),
    _chunk({"content": "héllo ✓ 🙂"}),
    _chunk({"content": 'a "quote"'}),
    _chunk({"content": "back\\slash"}),
    _chunk({"content": "new\nline"}),
    _chunk({"content": "tab\tx"}),
    _chunk({"content": "w"}, choice={"logprobs": {"content": [{"token": "w"}]}}),
    _chunk({"content": "w", "tool_calls": [{"index": 0}]}),
    _chunk({}, choice={"finish_reason": "stop"}),
    _chunk({"content": "w"}, usage={"prompt_tokens": 1}),
    _chunk({"content": "w"}, error={"message": "x"}),
    _chunk({"content": "w"}).replace(b"chatcmpl-1", b"chatcmpl-2"),
    _chunk({"content": "}]}"}),
]


def test_plain_chunks_are_read_as_text_and_others_as_parsed() -> None:
    template = TextTemplate()
    read_as_text = 0
    for payload in PAYLOADS:
        parsed = orjson.loads(payload)
        result = template.parse(payload)
        if isinstance(result, str):
            read_as_text += 1
            choice = parsed["choices"][0]
            assert choice["delta"] == {"content": result}
            assert not choice["finish_reason"]
            assert not choice["logprobs"]
            assert "usage" not in parsed
            assert "error" not in parsed
        else:
            assert result == parsed
    # Learnt from " first" (itself parsed): then " plain", "", "héllo ✓ 🙂" and "}]}".
    assert read_as_text == 4


def test_what_is_no_json_still_fails_as_the_parser_fails() -> None:
    template = TextTemplate()
    template.parse(_chunk({"content": "a"}))
    bad_utf8 = _chunk({"content": "ab"}).replace(b"ab", b"a\xffb")
    with pytest.raises(orjson.JSONDecodeError):
        template.parse(bad_utf8)
    with pytest.raises(orjson.JSONDecodeError):
        template.parse(b"{not json")


def test_a_chunk_whose_text_cannot_be_told_apart_is_never_learnt() -> None:
    template = TextTemplate()
    odd = orjson.dumps({"delta": {"content": "x"}, "choices": [{"delta": {"content": "y"}}]})
    assert template.parse(odd) == orjson.loads(odd)
    assert template.parse(odd) == orjson.loads(odd)  # not learnt: parsed again

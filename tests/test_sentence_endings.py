"""A turn stopped for its length ends at a sentence end (issue 26: the local model's turns
were cut at 256 tokens mid-word): where sentences end, the wrap-up that holds the last
sentence back, and the local model's sampling defaults that a request overrides."""

from __future__ import annotations

import pytest

from symposia.orchestration.default_debate import DEBATE_TURN_TOKENS, default_bots
from symposia.providers.base import ChatMessage, CompletionRequest, ResponseFormat
from symposia.providers.local_sampling import REPEAT_PENALTY, TEMPERATURE, sampling
from symposia.providers.sentences import WrapUp, last_sentence_end, trim_to_sentence


@pytest.mark.parametrize(
    ("text", "trimmed"),
    [
        ("Cars pollute. They also kill. And the", "Cars pollute. They also kill."),
        ("Is it fair? Maybe! But then", "Is it fair? Maybe!"),
        ('He said "stop." Then he', 'He said "stop."'),
        ("It costs 3.5 dollars. Then it", "It costs 3.5 dollars."),  # not at 3.
        ("By 2040. Cities will", "By 2040."),  # a number ends a sentence mid-line
        ("First point\n\nSecond poi", "First point"),  # a paragraph break
        ("Ends here.", "Ends here."),
        ("Ends here.  ", "Ends here."),
        ("No sentence ends in thi", "No sentence ends in thi"),  # kept whole
    ],
)
def test_trim_to_sentence(text: str, trimmed: str) -> None:
    assert trim_to_sentence(text) == trimmed


@pytest.mark.parametrize(
    "text",
    [
        "Take cities, e.g. Paris and",
        "Ask Dr. Smith and",
        "Two reasons:\n1. Air is",  # a list marker, not a sentence
        "The cost is 3.",  # may yet be 3.5
    ],
)
def test_no_sentence_end_while_the_text_is_coming(text: str) -> None:
    assert last_sentence_end(text) is None


def test_a_terminator_at_the_end_counts_once_the_text_is_final() -> None:
    assert last_sentence_end("It works.") is None
    assert last_sentence_end("It works.", final=True) == len("It works.")
    assert last_sentence_end("See e.g.", final=True) is None


def _wrap(limit: int, tokens: list[str]) -> tuple[str, bool, int]:
    """What a wrap-up shows of `tokens` (stopping as the local provider does), whether a
    sentence end stopped it, and how many tokens were taken."""
    wrap = WrapUp(limit)
    shown = ""
    produced = 0
    for token in tokens:
        produced += 1
        shown += wrap.feed(token, produced)
        if produced >= limit or wrap.ended:
            break
    if not wrap.ended:
        shown += wrap.flush(cut=produced >= limit)
    return shown, wrap.ended, produced


def test_wrap_up_streams_the_start_and_ends_at_the_first_sentence_end_after_it() -> None:
    tokens = ["One", ".", " Two", ".", " Three", " and", ".", " Four", " five", " six"]
    wrap = WrapUp(9)  # wraps up from the 6th token: the second half
    assert wrap.wrap_from == 5
    assert [wrap.feed(t, n) for n, t in enumerate(tokens[:5], 1)] == tokens[:5]
    shown, ended, produced = _wrap(9, tokens)
    assert shown == "One. Two. Three and."
    assert ended
    assert produced == 8  # stopped at " Four": the model is not run on to the limit


def test_wrap_up_cuts_back_to_the_last_sentence_end_at_the_limit() -> None:
    tokens = ["A", " b", " c", " d", ".", " E", " f", " g", "."]
    assert _wrap(6, tokens) == ("A b c d.", True, 6)
    # the budget spent inside a sentence that began before the wrap-up: given whole
    assert _wrap(6, ["A", " b", " c", " d", " e", " f", " g"]) == ("A b c d e f", False, 6)
    # the limit reached right on a terminator: a sentence end
    assert _wrap(6, ["A", " b", " c", " d", " e", "."]) == ("A b c d e.", False, 6)


def test_wrap_up_gives_everything_when_the_model_ends_first() -> None:
    wrap = WrapUp(9)
    shown = "".join(
        wrap.feed(t, n) for n, t in enumerate(["A", " b", " c", " d", " e", " f", " g"], 1)
    )
    assert shown + wrap.flush(cut=False) == "A b c d e f g"


def _request(**fields: object) -> CompletionRequest:
    return CompletionRequest("smollm2", [ChatMessage("user", "hi")], **fields)  # type: ignore[arg-type]


def test_local_sampling_defaults_only_where_the_request_set_nothing() -> None:
    defaults = sampling(_request())
    assert defaults["temp"] == TEMPERATURE
    assert defaults["repeat_penalty"] == REPEAT_PENALTY
    chosen = sampling(_request(temperature=1.2, top_p=0.5, options={"presence_penalty": 0.4}))
    assert (chosen["temp"], chosen["top_p"], chosen["presence_penalty"]) == (1.2, 0.5, 0.4)
    assert "repeat_penalty" not in chosen  # the client's own penalty, alone
    assert "grammar" not in defaults
    assert "grammar" in sampling(_request(response_format=ResponseFormat("json_object")))


def test_default_debaters_fit_a_turn_and_take_a_lower_server_default() -> None:
    optimist, skeptic = default_bots("local/smollm2", 256)
    assert optimist.max_tokens == skeptic.max_tokens == DEBATE_TURN_TOKENS
    assert "argue for" in optimist.system_prompt  # each is told its side
    assert "argue against" in skeptic.system_prompt
    assert default_bots("scripted/count", 8)[0].max_tokens == 8

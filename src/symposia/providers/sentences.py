"""Where a sentence ends in generated text, so an answer stopped for its length can end
at one instead of mid-word.

A sentence ends at `.`, `!`, `?` or `…` (any run of them, then closing quotes or
brackets) followed by white space, or at a paragraph break. Not at the dot of a common
abbreviation (`e.g.`, `Dr.`) nor of a list marker at a line's start (`1. `): cutting
there would leave the very fragment this is meant to avoid.
"""

from __future__ import annotations

import re

_CLOSERS = "\"')\\]\u201d\u2019"  # quotes and brackets that may follow a terminator
_END = re.compile(rf"[.!?\u2026]+[{_CLOSERS}]*(?=\s)|\n\s*\n")
_FINAL_END = re.compile(rf"[.!?\u2026]+[{_CLOSERS}]*\s*$")
_WORD_BEFORE = re.compile(r"(?:^|(?<=\s))([\w.]+)\.$")
ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "cf", "approx"}
)


def _is_false_end(text: str, dot: int) -> bool:
    """Whether the `.` at `dot` closes an abbreviation or a list marker, not a sentence."""
    word = _WORD_BEFORE.search(text, 0, dot + 1)
    if word is None:
        return False
    before = word.group(1).lower()
    if before in ABBREVIATIONS:
        return True
    line_start = text.rfind("\n", 0, word.start()) + 1
    return before.isdigit() and not text[line_start : word.start()].strip()


def last_sentence_end(text: str, *, final: bool = False) -> int | None:
    """The index just past the last sentence end in `text`, or None when there is none.

    While text is still coming, a terminator at the very end is not yet known to end a
    sentence (`3.` may become `3.5`); with `final`, the text is all there is, and it is.
    """
    end = None
    for match in _END.finditer(text):
        if match.group().startswith("\n"):
            end = match.start()
        elif not (match.group()[0] == "." and _is_false_end(text, match.start())):
            end = match.end()
    if final and (tail := _FINAL_END.search(text)):
        dot = tail.start()
        if not (text[dot] == "." and _is_false_end(text, dot)):
            end = len(text.rstrip())
    return end


def trim_to_sentence(text: str) -> str:
    """`text` without its unfinished last sentence (all of it when no sentence ends)."""
    end = last_sentence_end(text, final=True)
    return text[:end].rstrip() if end else text


# The share of an answer's token budget after which it ends at the first sentence end:
# the second half (a third proved too short for SmolLM2's longest sentences).
WRAP_UP_SHARE = 2


class WrapUp:
    """Ends an answer of at most `limit` tokens at a sentence end: from the second half of
    the budget on, the text of the sentence under way is held back, and the first sentence
    end found there ends the answer (the model is not run on for text to be thrown away).
    The budget spent with no sentence ended in that stretch, the held text is given
    whole: it continues a sentence already shown, and a fragment beats a gap."""

    def __init__(self, limit: int) -> None:
        self.wrap_from = limit - max(1, limit // WRAP_UP_SHARE)
        self.held = ""
        self.ended = False  # a sentence end was found after wrap_from

    def feed(self, text: str, produced: int) -> str:
        """What of `text` (the `produced`-th token's) to show now; `ended` once done."""
        if produced <= self.wrap_from and not self.held:
            return text
        self.held += text
        end = last_sentence_end(self.held)
        if end is None:
            return ""
        shown, self.held, self.ended = self.held[:end].rstrip(), "", True
        return shown

    def flush(self, *, cut: bool) -> str:
        """The held text when the answer ends otherwise: the whole of it (the model ended,
        or a stop), or up to its last sentence end when the budget ran out (`cut`)."""
        held, self.held = self.held, ""
        if cut and (end := last_sentence_end(held, final=True)):
            return held[:end].rstrip()
        return held


__all__ = ["WrapUp", "last_sentence_end", "trim_to_sentence"]

"""A chat's title, made from its first exchange by the conversation's own model.

Asked once, after the first answer, in the background (the person is reading the answer
meanwhile); a title the person set first, or meanwhile, is never overwritten. The model's
answer is cleaned (quotes, a `Title:` prefix, Markdown, line breaks) and cut to a few words.
"""

from __future__ import annotations

import re

from symposia.orchestration import prompt_template
from symposia.orchestration.generation import GenerationFailedError, Models, answer_of
from symposia.providers.base import ChatMessage

TITLE_PROMPT = (
    "Write a short title (at most six words) for the conversation below. "
    "Answer with the title only: no quotes, no punctuation at the end.\n\n"
    "User: {question}\n\nAssistant: {answer}"
)
EXCERPT_CHARS = 1500  # of the question and of the answer, each
TITLE_MAX_TOKENS = 24
TITLE_MAX_WORDS = 8
TITLE_MAX_CHARS = 80
_PREFIX = re.compile(r"^\s*(?:title\s*:\s*)", re.IGNORECASE)
_DECORATION = "\"'`*#_\u201c\u201d\u2018\u2019\u00ab\u00bb \t"  # quotes of any kind


def clean_title(text: str) -> str | None:
    """The first line of a model's answer as a title, or None when nothing is left."""
    line = next((part for part in text.splitlines() if part.strip()), "")
    line = _PREFIX.sub("", line).strip(_DECORATION).rstrip(".:;,!").strip(_DECORATION)
    words = line.split()[:TITLE_MAX_WORDS]
    title = " ".join(words)[:TITLE_MAX_CHARS].strip()
    return title or None


def fallback_title(question: str) -> str | None:
    """The question's first words: a title when the model gives none."""
    return clean_title(question)


async def make_title(models: Models, model: str, question: str, answer: str) -> str | None:
    """A title for the exchange, by `model`; the question's first words when it fails."""
    texts = {"question": question[:EXCERPT_CHARS], "answer": answer[:EXCERPT_CHARS]}
    prompt = prompt_template.fill(TITLE_PROMPT, texts)
    try:
        text = await answer_of(models, model, [ChatMessage("user", prompt)], TITLE_MAX_TOKENS)
    except GenerationFailedError:
        return fallback_title(question)
    return clean_title(text) or fallback_title(question)

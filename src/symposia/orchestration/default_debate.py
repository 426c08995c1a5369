"""The debate a run gets when it names no bots: the one place its defaults are written.

`POST /api/run` without `bots`, the page's form (it starts from `GET /api/presets`'s
`default`) and `symposia debate` without `--bot` (it sends none) all take these, so a
newcomer's first debate reads the same everywhere.

Written for the smallest model we ship (SmolLM2-135M, the default `local/smollm2`): a
model that size drifts from the topic, praises the other side and runs on, unless each
side is told its position, whom to answer and how short to be. The same words serve a
large model as well. The prompts name no one: told "do not agree with Skeptic", the
135M model starts writing "Skeptic: …" itself, copying how the others' turns reach it.
A turn's budget fits two or three sentences; the local model ends a turn that reaches it
at a sentence end (providers/sentences.py).
"""

from __future__ import annotations

from symposia.domain.models import BotConfig

DEBATE_TURN_TOKENS = 120  # two or three sentences, and room to finish the last one
DEBATE_TEMPERATURE = 0.6  # the local model keeps to its side better below 0.7
DEFAULT_DEBATERS = (
    (
        "Optimist",
        "You argue for the topic in the first user message, in a debate. The later user "
        "messages are your opponent's arguments against it: answer the last one. Reply in "
        "two or three short sentences, then give one new reason for the topic. Never agree "
        "with your opponent.",
    ),
    (
        "Skeptic",
        "You argue against the topic in the first user message, in a debate. The later user "
        "messages are your opponent's arguments for it: answer the last one. Reply in two "
        "or three short sentences, then give one risk or cost of the idea. Never agree with "
        "your opponent.",
    ),
)


def default_bots(model: str, max_tokens: int) -> list[BotConfig]:
    """The two debaters on `model`; a turn has DEBATE_TURN_TOKENS, or `max_tokens` (the
    server's DEFAULT_MAX_TOKENS) when that is fewer."""
    return [
        BotConfig(
            name=name,
            model=model,
            system_prompt=prompt,
            temperature=DEBATE_TEMPERATURE,
            max_tokens=min(max_tokens, DEBATE_TURN_TOKENS),
        )
        for name, prompt in DEFAULT_DEBATERS
    ]


__all__ = ["DEFAULT_DEBATERS", "default_bots"]

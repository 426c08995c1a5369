"""Secrets out of text that came from elsewhere.

A provider's error message may echo what it was sent ("Incorrect API key provided:
Bearer sk-..."), and a failure's message reaches the client, the logs and the database.
`redact` masks the secrets this process was configured with (`remember_secrets`, from
the settings at start-up) and anything shaped like a credential. `ProviderFailure` passes
its text through it when it is built, so no path that builds one can forget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[redacted]"
# A configured value shorter than this cannot be told from ordinary words.
MIN_SECRET_CHARS = 4
# Random-looking runs this long (letters and digits mixed) are taken for tokens: AWS
# secret keys, JWTs, hex or base64 tokens. Model names and words are shorter.
LONG_TOKEN_CHARS = 32

_secrets: set[str] = set()

_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+")
_KEY_SHAPES = re.compile(
    r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}"  # OpenAI, Anthropic (sk-ant-), OpenRouter (sk-or-)
    r"|\bsym_[A-Za-z0-9_\-]{8,}"  # Symposia's own API keys
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
)
_RUN = re.compile(rf"[A-Za-z0-9_\-+/=]{{{LONG_TOKEN_CHARS},}}")


def remember_secrets(values: Iterable[str | None]) -> None:
    """Add configured secrets to those `redact` masks wherever they appear."""
    _secrets.update(v for v in values if v is not None and len(v) >= MIN_SECRET_CHARS)


def _long_token(match: re.Match[str]) -> str:
    run = match.group()
    random_looking = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
    return MASK if random_looking else run


def redact(text: str) -> str:
    """`text` with configured secrets and credential-shaped strings masked."""
    for secret in sorted(_secrets, key=len, reverse=True):  # a longer one may hold a shorter
        if secret in text:
            text = text.replace(secret, MASK)
    text = _BEARER.sub(rf"\1\2{MASK}", text)
    text = _KEY_SHAPES.sub(MASK, text)
    return _RUN.sub(_long_token, text)

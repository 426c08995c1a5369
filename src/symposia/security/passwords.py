"""bcrypt, used directly (passlib is unmaintained and breaks with bcrypt 4.1+)."""

from __future__ import annotations

import bcrypt

BCRYPT_MAX_BYTES = 72  # bcrypt 5 refuses longer passwords instead of truncating them


def hash_password(password: str, rounds: int = 12) -> str:
    secret = password.encode("utf-8")
    if len(secret) > BCRYPT_MAX_BYTES:
        raise ValueError(f"passwords are limited to {BCRYPT_MAX_BYTES} bytes by bcrypt")
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: bytes, hashed: str) -> bool:
    """False, never an exception, for any input a client can send."""
    if len(password) > BCRYPT_MAX_BYTES:
        return False
    try:
        return bool(bcrypt.checkpw(password, hashed.encode("ascii")))
    except ValueError:  # a malformed stored hash
        return False

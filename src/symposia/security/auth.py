"""Who is calling: HTTP Basic (bcrypt), an API key (`X-API-Key` or `Authorization: Bearer`),
or a browser session (`security.sessions`, kept server-side by `security.session_store`;
header credentials win over it).

DEV_MODE turns authentication off. With no credentials configured at all (no Basic user,
no API_KEY/API_KEYS, no active API key), a server on loopback lets requests through as the
`local` principal (a `Bearer` that is not shaped like a key of ours is then ignored: OpenAI
clients always send one); start-up refuses that on any other address (see `check_exposure`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any

from symposia.domain.models import utcnow
from symposia.errors import UnauthorizedError
from symposia.governance.key_store import KeyLimitStore
from symposia.security.api_keys import ApiKeyStore, parse_key
from symposia.security.csrf import check_csrf
from symposia.security.passwords import verify_password
from symposia.security.principals import DEV, LOCAL, Principal
from symposia.security.session_store import SessionRecord, SessionStore
from symposia.security.sessions import session_id
from symposia.settings import Settings

logger = logging.getLogger(__name__)

VERIFIED_TTL_SECONDS = 300.0  # a verified Basic password skips bcrypt for this long
OPEN_MODE_RECHECK_SECONDS = 5.0
MAX_VERIFIED_CACHE = 1024


# The id of a static key is a slow digest of it: ids reach logs and rate-limit buckets, and
# a fast one would let a short key be guessed offline from its id.
STATIC_KEY_ID_SALT = b"symposia static API key id"
STATIC_KEY_ID_ROUNDS = 100_000


def static_key_id(key: str) -> str:
    """A stable id for an API_KEY/API_KEYS entry (what its requests own), without the key:
    `env-` and 16 hex digits of its PBKDF2-SHA256."""
    digest = hashlib.pbkdf2_hmac(
        "sha256", key.encode("utf-8"), STATIC_KEY_ID_SALT, STATIC_KEY_ID_ROUNDS
    )
    return "env-" + digest.hex()[:16]


class StartupRefusedError(Exception):
    """The configuration would expose the server without authentication."""


def check_exposure(settings: Settings, has_api_keys: bool) -> None:
    """Refuse an unauthenticated server on a non-loopback address; warn on loopback."""
    configured = (
        settings.basic_auth_configured
        or settings.oidc_configured
        or has_api_keys
        or bool(settings.static_api_keys)
    )
    if not (settings.dev_mode or configured) and settings.allowed_host_names is None:
        raise StartupRefusedError(
            "refusing ALLOWED_HOSTS=* with no credentials configured: any web page could "
            "reach this server through a domain name it points at this machine (DNS "
            "rebinding); list the host names it is reached by, or configure credentials"
        )
    if settings.dev_mode or configured:
        if settings.dev_mode and not settings.host_is_loopback:
            logger.warning(
                "DEV_MODE is on and HOST=%s is reachable from other machines: "
                "anyone there can use this server",
                settings.host,
            )
        return
    if not settings.host_is_loopback:
        raise StartupRefusedError(
            f"refusing to listen on HOST={settings.host} with no credentials configured: set "
            "BASIC_AUTH_USER and BASIC_AUTH_PW_HASH (`symposia hash-password`), create an API "
            "key (`symposia keys create --name NAME`), or listen on 127.0.0.1"
        )
    logger.warning(
        "NO AUTHENTICATION: no credentials are configured, so anyone on this machine can use "
        "this server. Set BASIC_AUTH_USER/BASIC_AUTH_PW_HASH or create an API key."
    )


class Authenticator:
    def __init__(self, settings: Settings, keys: ApiKeyStore, sessions: SessionStore) -> None:
        self._settings = settings
        self._keys = keys
        self._sessions = sessions
        self._user = (settings.basic_auth_user or "").encode("utf-8")
        self._hash = (
            settings.basic_auth_pw_hash.get_secret_value() if settings.basic_auth_pw_hash else None
        )
        self._verified: dict[bytes, float] = {}
        # Keys' limits (their expiry), when the server meters keys (`governance`).
        self.key_limits: KeyLimitStore | None = None
        self._open_checked = (0.0, False)
        # API_KEY/API_KEYS, by the digest they are compared on and the id they own under.
        self._static = {
            hashlib.sha256(key.encode("utf-8")).digest(): static_key_id(key)
            for key in settings.static_api_keys
        }

    @property
    def static_key_ids(self) -> list[str]:
        """The ids of the API_KEY/API_KEYS entries (what their limits are set by)."""
        return list(self._static.values())

    async def principal(
        self,
        headers: Mapping[str, str],
        session: dict[str, Any] | None = None,
        method: str = "GET",
    ) -> Principal:
        """The caller of a request: header credentials, else the signed-in `session`
        (`scope["session"]`; a state-changing `method` then needs its CSRF token), else
        LOCAL in open mode; 401 otherwise."""
        if self._settings.dev_mode:
            return DEV
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        api_key = headers.get("x-api-key")
        if api_key is None and scheme.lower() == "bearer":
            api_key = credentials.strip()
            if parse_key(api_key) is None and await self._open():
                # The openai SDK always sends a bearer (`api_key="anything"`): on a server
                # with no credentials configured, one that is not a key of ours is ignored.
                return LOCAL
        if api_key is not None:
            return await self.api_key(api_key)
        if scheme.lower() == "basic":
            return await self._basic(credentials.strip())
        if session:
            record = await self.from_session(session)
            if record is not None:
                check_csrf(record.csrf, method, headers)
                return record.principal
        if await self._open():
            return LOCAL
        raise self.unauthorized(
            "authentication required: HTTP Basic, an API key in X-API-Key or "
            "Authorization: Bearer, or a browser session (sign in at /signin)",
            headers,
        )

    def unauthorized(
        self, message: str, headers: Mapping[str, str] | None = None
    ) -> UnauthorizedError:
        """A 401 whose challenge is Basic only where a Basic user is configured and the
        request is not a page's script (fetch, EventSource: `Sec-Fetch-Mode` other than
        `navigate`): a browser answers a Basic challenge with a login dialog, which cannot
        succeed on a key-only server and would pop up over a page that signs in by itself."""
        mode = headers.get("sec-fetch-mode", "navigate") if headers is not None else "navigate"
        basic = self._settings.basic_auth_configured and mode == "navigate"
        return UnauthorizedError(message, "Basic" if basic else "Bearer")

    async def api_key(self, presented: str) -> Principal:
        key_id = self._static_key(presented) or await self._keys.verify(presented)
        if key_id is None:
            raise self.unauthorized("invalid API key")
        if self.key_limits is not None:
            limits = await self.key_limits.cached(key_id)
            if limits is not None and limits.expired(utcnow()):
                raise self.unauthorized(f"API key {key_id} expired")
        return Principal(f"key:{key_id}", "api_key", key_id)

    def _static_key(self, presented: str) -> str | None:
        """The id of the API_KEY/API_KEYS entry presented; digests compared in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).digest()
        found = None
        for known, key_id in self._static.items():
            if hmac.compare_digest(digest, known):
                found = key_id
        return found

    async def password(self, user: str, password: str) -> Principal:
        """The Basic user, checked as a Basic header would be (the sign-in form)."""
        raw = user.encode("utf-8") + b":" + password.encode("utf-8")
        return await self._basic(base64.b64encode(raw).decode("ascii"))

    @property
    def sessions(self) -> SessionStore:
        return self._sessions

    async def start_session(self, principal: Principal, key_id: str | None) -> SessionRecord:
        """A server-side session for a browser that just signed in as `principal`."""
        return await self._sessions.create(principal, key_id, self._fingerprint(principal.kind))

    async def from_session(self, session: dict[str, Any]) -> SessionRecord | None:
        """The cookie's session while it lives and its credential still holds: the Basic
        user and password hash are the configured ones, its API key is not revoked, OIDC
        has the same issuer. Otherwise its row is deleted and the cookie emptied (the
        response then deletes it)."""
        sid = session_id(session)
        record = None if sid is None else await self._sessions.get(sid)
        if record is not None and await self._holds(record):
            return record
        if record is not None:
            await self._sessions.delete(record.id)
        session.clear()
        return None

    async def _holds(self, record: SessionRecord) -> bool:
        kind = record.principal.kind
        if kind == "api_key" and record.key_id in self._static.values():
            return True  # a static key lives as long as it is configured
        if kind == "api_key":
            return record.key_id is not None and await self._keys.active(record.key_id)
        if kind == "basic" and not (
            self._settings.basic_auth_configured
            and record.principal.id == self._basic_principal().id
        ):
            return False
        if kind == "oidc" and not self._settings.oidc_configured:
            return False
        fingerprint = self._fingerprint(kind)
        return (
            fingerprint is not None
            and record.fingerprint is not None
            and hmac.compare_digest(fingerprint, record.fingerprint)
        )

    def _fingerprint(self, kind: str) -> str | None:
        """What a session of `kind` depends on beyond its principal: a new password hash
        or another OpenID issuer ends the sessions made before."""
        if kind == "basic" and self._hash is not None:
            material = self._user + b"\0" + self._hash.encode("utf-8")
        elif kind == "oidc" and self._settings.oidc_issuer:
            material = self._settings.oidc_issuer.encode("utf-8")
        else:
            return None
        return hashlib.sha256(material).hexdigest()

    async def _basic(self, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            raise self.unauthorized("malformed Basic credentials") from None
        user, sep, password = decoded.partition(b":")
        if not sep or self._hash is None or not self._user:
            raise self.unauthorized("invalid username or password")
        fingerprint = hashlib.sha256(decoded).digest()
        now = time.monotonic()
        if self._verified.get(fingerprint, 0.0) > now:
            return self._basic_principal()
        user_ok = hmac.compare_digest(user, self._user)
        # bcrypt takes ~0.2 s of CPU: off the event loop, and always (no timing shortcut).
        password_ok = await asyncio.to_thread(verify_password, password, self._hash)
        if not (user_ok and password_ok):
            raise self.unauthorized("invalid username or password")
        if len(self._verified) >= MAX_VERIFIED_CACHE:
            self._verified.clear()
        self._verified[fingerprint] = now + VERIFIED_TTL_SECONDS
        return self._basic_principal()

    def _basic_principal(self) -> Principal:
        name = self._user.decode("utf-8")
        return Principal(f"user:{name}", "basic", name)

    async def _open(self) -> bool:
        """No credentials configured at all (checked again every few seconds, so a key
        created while the server runs closes the door)."""
        if self._settings.basic_auth_configured or self._settings.oidc_configured or self._static:
            return False
        checked_at, is_open = self._open_checked
        if time.monotonic() - checked_at > OPEN_MODE_RECHECK_SECONDS:
            is_open = not await self._keys.any_active()
            self._open_checked = (time.monotonic(), is_open)
        return is_open

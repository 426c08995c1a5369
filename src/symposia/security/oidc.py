"""OpenID Connect sign-in through Authlib's Starlette client.

Authlib reads the provider's discovery document (`<issuer>/.well-known/openid-configuration`),
sends the browser to its authorize endpoint with state, nonce and a PKCE challenge (kept in
the session until the callback), trades the code for tokens and checks the id_token's
signature (the provider's JWKS), issuer, audience, expiry and nonce. The person becomes
the principal `oidc:<issuer host>:<sub>`: the same person on the same provider owns the
same runs at every sign-in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response

from symposia.errors import UnauthorizedError, UnavailableError
from symposia.security.principals import Principal
from symposia.settings import Settings

DISCOVERY_PATH = "/.well-known/openid-configuration"


class OidcSignIn:
    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer
        assert settings.oidc_client_secret
        issuer = settings.oidc_issuer.rstrip("/")
        self.issuer_host = urlsplit(issuer).netloc
        self.name = settings.oidc_name or self.issuer_host
        oauth = OAuth()
        self._client: Any = oauth.register(
            "oidc",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            server_metadata_url=issuer + DISCOVERY_PATH,
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )

    async def login(self, request: Request, redirect_uri: str) -> Response:
        """A redirect to the provider; state, nonce and the PKCE verifier go in the session."""
        try:
            response: Response = await self._client.authorize_redirect(request, redirect_uri)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return response

    async def finish(self, request: Request) -> Principal:
        """The principal the provider vouches for on its redirect back; 401 if it does not
        (the person declined, or a state, code or id_token that does not check out)."""
        try:
            token = await self._client.authorize_access_token(request)
        except (OAuthError, JoseError) as exc:  # JoseError: an id_token that does not check out
            raise UnauthorizedError(f"sign-in with {self.name} failed: {exc.error}") from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        claims = token.get("userinfo") or {}
        subject = claims.get("sub")
        if not subject:
            raise UnauthorizedError(f"sign-in with {self.name} failed: no subject in the id_token")
        name = claims.get("email") or claims.get("name") or subject
        return Principal(f"oidc:{self.issuer_host}:{subject}", "oidc", str(name))

    def _unreachable(self, exc: httpx.HTTPError) -> UnavailableError:
        return UnavailableError(
            f"the sign-in provider {self.name} cannot be reached right now "
            f"({type(exc).__name__}); try again shortly",
            headers={"Retry-After": "5"},
        )

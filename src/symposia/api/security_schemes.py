"""The OpenAPI document's security schemes, so `/docs` has an Authorize button.

Authentication is one dependency (`get_principal`) reading headers and the session, not
FastAPI's security classes (each would be another dependency on every request); so the
schemes are declared here, on every operation that can answer 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from symposia.security.sessions import COOKIE_NAME

SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`symposia keys create --name NAME`)",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same API key as `Authorization: Bearer`",
    },
    "Basic": {
        "type": "http",
        "scheme": "basic",
        "description": "BASIC_AUTH_USER and its password",
    },
    "Session": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": "A browser session from /signin; changes also need `X-CSRF-Token`",
    },
}
# Any one of them will do.
REQUIREMENT: list[dict[str, list[str]]] = [{name: []} for name in SCHEMES]


def declare_security(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {})["securitySchemes"] = SCHEMES
            for operations in schema["paths"].values():
                for operation in operations.values():
                    if "401" in operation.get("responses", {}):
                        operation["security"] = REQUIREMENT
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]

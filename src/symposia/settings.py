"""Every knob of the server, read once from the environment and `.env`.

One class, validated at start-up: a bad value stops the process with one line naming the
variable (see `load_settings`), instead of failing later inside a request.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})  # as a Host header has them
MIN_STATIC_KEY_CHARS = 12
RESERVED_PROVIDERS = frozenset(
    {"openai", "openrouter", "anthropic", "bedrock", "local", "scripted"}
)


class SettingsError(Exception):
    """A configuration value is invalid; the message names the variable."""


class CompatibleProvider(BaseModel):
    """An OpenAI-compatible server offered as its own `name/...` provider."""

    base_url: str
    api_key: SecretStr | None = None


class Settings(BaseSettings):
    """Symposia's configuration; each field is the environment variable of the same name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Providers
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    # Sent to OpenAI itself as OpenAI-Organization / OpenAI-Project (the SDK's variables).
    openai_org_id: str | None = None
    openai_project_id: str | None = None
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    app_url: str | None = None
    app_title: str = "Symposia"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    openai_compatible: dict[str, CompatibleProvider] = Field(default_factory=dict)
    aws_region: str | None = None
    bedrock_endpoint_url: str | None = None  # a VPC endpoint or proxy; None: AWS's own
    default_model: str = "local/smollm2"
    llm_timeout: float = Field(default=60.0, gt=0, le=3600)
    llm_idle_timeout: float = Field(default=30.0, gt=0, le=3600)
    llm_max_attempts: int = Field(default=3, ge=1, le=10)
    llm_retry_base_seconds: float = Field(default=1.0, ge=0, le=60)
    # Longest provider Retry-After a call waits out; None: LLM_TIMEOUT.
    retry_after_max_seconds: float | None = Field(default=None, ge=0, le=3600)
    models_cache_seconds: float = Field(default=3600.0, ge=0)
    max_tokens_limit: int = Field(default=4096, ge=1, le=1_000_000)
    default_max_tokens: int = Field(default=256, ge=1, le=1_000_000)
    # max_tokens sent to a provider that requires one (Anthropic, Bedrock; the local
    # model's answer limit) when the client set none. Not a cap: MAX_TOKENS_LIMIT is.
    provider_max_tokens_default: int = Field(default=4096, ge=1, le=1_000_000)
    max_message_chars: int = Field(default=100_000, ge=1)
    context_budget_tokens: int = Field(default=8000, ge=256)
    # Title a new chat from its first exchange, by the chat's model (one short extra call).
    chat_titles: bool = True
    # A JSON file of model prices ({"provider/model": {"input": $, "output": $}} per million
    # tokens) over the shipped table; turns' costs and cost budgets use it.
    prices_file: str | None = None
    # A YAML or JSON file of public model names (docs/models.md): name -> provider/model,
    # with optional defaults, price and fallbacks.
    models_file: str | None = None

    # Local model
    local_model_path: str | None = None
    local_n_ctx: int = Field(default=2048, ge=256, le=131_072)
    local_n_threads: int | None = Field(default=None, ge=1, le=256)
    local_preload: bool = False
    scripted_token_delay: float = Field(default=0.02, ge=0, le=10)

    # Security
    basic_auth_user: str | None = None
    basic_auth_pw_hash: SecretStr | None = None
    dev_mode: bool = False
    rate_limit_runs: str = "10/minute"
    rate_limit_chat: str = "60/minute"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(default=32_768, ge=4096, le=1_048_576)
    max_header_count: int = Field(default=100, ge=16, le=10_000)
    max_concurrent_runs_per_principal: int = Field(default=5, ge=1)
    # Open streams (SSE and WebSocket) one principal may hold in a process; more is a 429.
    max_streams_per_principal: int = Field(default=20, ge=1, le=100_000)
    # A request head must arrive within this of its first byte, a body within the other
    # of its head; else 408, or the connection is closed (`connection_limits`).
    header_read_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_read_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Open connections per process; 0: half the file descriptors it may open, less 64.
    max_connections: int = Field(default=0, ge=0, le=10_000_000)
    metrics_public: bool = True
    # Sign-in attempts (POST /auth/signin) per client address.
    rate_limit_signin: str = "10/minute"

    # Browser sessions (the sign-in page, OpenID Connect): a signed cookie
    # `symposia_session`. Without SESSION_SECRET each process picks a random one, so
    # sessions end with a restart and do not span several workers.
    session_secret: SecretStr | None = None
    # A session ends SESSION_MAX_AGE_SECONDS after its last use, and at the latest
    # SESSION_ABSOLUTE_MAX_AGE_SECONDS after sign-in, however often it is used.
    session_max_age_seconds: int = Field(default=7 * 86_400, ge=60, le=366 * 86_400)
    session_absolute_max_age_seconds: int = Field(default=30 * 86_400, ge=60, le=366 * 86_400)
    session_cookie_secure: bool = False  # send the cookie over HTTPS only
    # OpenID Connect sign-in: all of issuer, client id and secret, or none.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    # OIDC users (by the name they sign in with: their email, else name) who may manage
    # keys and read everyone's usage under /api/admin (the Basic user always may).
    admin_users: Annotated[list[str], NoDecode] = Field(default_factory=list)
    oidc_name: str | None = None  # the button reads "Sign in with <OIDC_NAME>"
    # The redirect URI registered with the provider; unset, built from the request (behind
    # a TLS-terminating proxy that is http://..., so set it there).
    oidc_redirect_url: str | None = None

    # The APIs of the systems Symposia replaces (docs/seeds.md): the supervisor chat's
    # body on POST /api/chat/stream, and the OpenRouter chat server's routes at the root
    # (/models, /conversations..., and its JSON at GET /). Each can be turned off.
    compat_supervisor_chat: bool = True
    compat_openrouter_routes: bool = True

    # Tools from MCP servers (docs/tools.md): the operator's servers file, and the limits
    # of every call (a server's own `timeout_seconds` overrides the timeout).
    mcp_servers_file: str | None = None
    mcp_call_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    mcp_max_result_chars: int = Field(default=100_000, ge=100, le=10_000_000)
    mcp_max_argument_chars: int = Field(default=100_000, ge=100, le=10_000_000)
    max_tool_steps: int = Field(default=8, ge=1, le=32)
    # The Responses API's `mcp` tool: the URL prefixes a client's `server_url` may start
    # with (empty: none, only the servers of MCP_SERVERS_FILE); `https://` alone is any
    # public host, never loopback or private addresses unless a prefix names the host.
    mcp_allowed_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Runs and streaming
    run_max_turns: int = Field(default=20, ge=1, le=10_000)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    sse_send_timeout: float = Field(default=30.0, gt=0, le=3600)
    event_log_max_events: int = Field(default=100_000, ge=100)
    event_log_retention_seconds: float = Field(default=3600.0, ge=0)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0, le=300)
    # The process generating a run holds its lease, renewed every RUN_HEARTBEAT_SECONDS
    # (when it also looks for the expired leases of others); a lease not renewed for
    # RUN_LEASE_SECONDS (RUN_STALE_SECONDS, its former name, is still read) lost its process.
    run_heartbeat_seconds: float = Field(default=3.0, gt=0, le=300)
    run_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        validation_alias=AliasChoices("run_lease_seconds", "run_stale_seconds"),
    )
    # What happens to such a run: taken over and continued (at most RUN_MAX_TAKEOVERS
    # times), or, with RUN_RESUME=false, marked `interrupted`.
    run_resume: bool = True
    run_max_takeovers: int = Field(default=3, ge=0, le=100)
    # How long a run waits for an agent of kind `human` before its `on_human_timeout`.
    human_timeout_seconds: float = Field(default=600.0, gt=0, le=7 * 86_400)
    # How long a run whose database or event log stops answering waits for them, paused
    # under its lease, before it ends as `error` (stored as soon as it can be written).
    run_dependency_grace_seconds: float = Field(default=300.0, gt=0, le=86_400)

    # Infrastructure: the embedded SQLite file when unset; limits in memory without Redis
    database_url: str | None = None
    redis_url: str | None = None
    # Where event logs live: `auto` is Redis Streams when REDIS_URL is set, else memory.
    event_log: Literal["auto", "memory", "redis"] = "auto"
    # Bounds on a PostgreSQL or Redis that stops answering: a request waits at most about
    # connect + statement (database) or connect + command (Redis), then answers 503.
    # SQLite is a local file: its busy timeout is its only wait.
    database_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    database_statement_timeout_seconds: float = Field(default=3.0, gt=0, le=3600)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    redis_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=300)
    redis_timeout_seconds: float = Field(default=3.0, gt=0, le=300)

    # HTTP. API_HOST/API_PORT (the supervisor chat seed's names) are read when HOST/PORT
    # are not set: ours win.
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("host", "api_host"))
    port: int = Field(
        default=8000, ge=0, le=65535, validation_alias=AliasChoices("port", "api_port")
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Host names served (DNS rebinding; security.hosts): the loopback names always; unset,
    # beyond a loopback HOST also any IP address and this machine's name; `*` any name.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # JSON log lines also go to this file, rotated at LOG_FILE_MAX_BYTES with
    # LOG_FILE_BACKUPS old files kept; 0: not rotated here (logrotate does it), which is
    # what `--workers N` does, as N processes cannot rotate one file.
    log_file: str | None = None
    log_file_max_bytes: int = Field(default=10 * 1_048_576, ge=0)
    log_file_backups: int = Field(default=5, ge=0, le=1000)

    # Settings of the systems Symposia replaces (docs/operations.md, "Settings of the
    # seed systems"): each is honoured, or refused at start; none is ignored.
    # Static API keys (X-API-Key or Bearer), accepted beside the keys in the database.
    api_key: SecretStr | None = None
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # The default model's provider and name, when DEFAULT_MODEL is not set.
    llm_provider: str | None = None
    model_name: str | None = None
    bedrock_model_id: str | None = None
    # A label shown by /health and on every log line (APP_ENV is read too).
    environment: str | None = Field(
        default=None, validation_alias=AliasChoices("environment", "app_env")
    )
    # DEBUG=true: LOG_LEVEL=DEBUG when LOG_LEVEL is not set; never tracebacks to clients.
    debug: bool = False
    # The version /health and GET / report (the package version when unset).
    version: str | None = None

    @field_validator(
        "cors_origins",
        "trusted_proxies",
        "allowed_hosts",
        "api_keys",
        "admin_users",
        "mcp_allowed_urls",
        mode="before",
    )
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_runs", "rate_limit_chat", "rate_limit_signin")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must look like 10/minute or 100 per hour") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("mcp_allowed_urls")
    @classmethod
    def _url_prefixes(cls, value: list[str]) -> list[str]:
        from symposia.security.outbound_urls import UrlPrefix

        for item in value:
            UrlPrefix.parse(item)  # a ValueError says which
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        names = []
        for item in value:
            name = item.strip().lower()
            if name != "*" and ("/" in name or "*" in name or name.count(":") == 1):
                raise ValueError(
                    f"{item!r} is not a host name: give names without scheme or port, "
                    "like symposia.example.com, or * for any"
                )
            if ":" in name and not name.startswith("["):
                name = f"[{name}]"  # an IPv6 address, as a Host header writes it
            names.append(name)
        return names

    @cached_property
    def allowed_host_names(self) -> frozenset[str] | None:
        """The Host names served (None: any); see `security.hosts`."""
        if "*" in self.allowed_hosts:
            return None
        names = set(LOOPBACK_NAMES) | set(self.allowed_hosts)
        if not self.allowed_hosts and not self.host_is_loopback:
            names.add(socket.gethostname().lower())
            if self.host not in ("0.0.0.0", "::", ""):
                names.add(f"[{self.host}]" if ":" in self.host else self.host.lower())
        return frozenset(names)

    @field_validator("basic_auth_pw_hash")
    @classmethod
    def _bcrypt_hash(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError("must be a bcrypt hash: make one with `symposia hash-password`")
        return value

    @property
    def basic_auth_configured(self) -> bool:
        return bool(self.basic_auth_user and self.basic_auth_pw_hash)

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        given = [self.oidc_issuer, self.oidc_client_id, self.oidc_client_secret]
        if any(given) and not all(given):
            raise ValueError(
                "OpenID Connect needs all of OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"
            )
        if self.oidc_issuer and not self.oidc_issuer.startswith(("https://", "http://")):
            raise ValueError(
                "OIDC_ISSUER must be the provider's URL, like https://accounts.example"
            )
        return self

    @model_validator(mode="after")
    def _absolute_after_idle(self) -> Settings:
        if self.session_absolute_max_age_seconds < self.session_max_age_seconds:
            raise ValueError(
                "SESSION_ABSOLUTE_MAX_AGE_SECONDS must be at least SESSION_MAX_AGE_SECONDS"
            )
        return self

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def cors_credentials(self) -> bool:
        """Cross-origin requests may carry the session cookie only from listed origins:
        a browser refuses credentials with `*`, and allowing any origin would be unsafe."""
        return bool(self.cors_origins) and "*" not in self.cors_origins

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("openai_compatible")
    @classmethod
    def _reserved_names(cls, value: dict[str, CompatibleProvider]) -> dict[str, CompatibleProvider]:
        clash = set(value) & RESERVED_PROVIDERS
        if clash:
            raise ValueError(f"provider names {sorted(clash)} are built in; choose others")
        bad = [name for name in value if not name.isidentifier()]
        if bad:
            raise ValueError(f"provider names must be simple identifiers, got {bad}")
        return value

    @model_validator(mode="after")
    def _stale_after_heartbeats(self) -> Settings:
        if self.run_lease_seconds < 2 * self.run_heartbeat_seconds:
            raise ValueError(
                "RUN_LEASE_SECONDS must be at least twice RUN_HEARTBEAT_SECONDS, or a live "
                "run of another server could be taken for a dead one"
            )
        return self

    @field_validator("prices_file")
    @classmethod
    def _prices_load(cls, value: str | None) -> str | None:
        if value:
            from symposia.providers.pricing import PriceTable

            PriceTable.load(value)  # a ValueError naming the file and the entry
        return value

    @model_validator(mode="after")
    def _redis_log_has_url(self) -> Settings:
        if self.event_log == "redis" and not self.redis_url:
            raise ValueError("EVENT_LOG=redis needs REDIS_URL")
        return self

    @property
    def event_log_on_redis(self) -> bool:
        """Whether event logs go to Redis Streams (shared by processes) or stay in memory."""
        if self.event_log == "auto":
            return bool(self.redis_url)
        return self.event_log == "redis"

    @field_validator("models_file")
    @classmethod
    def _models_load(cls, value: str | None) -> str | None:
        if value:
            from symposia.providers.routes import load_routes

            load_routes(value)  # a ValueError naming the file and the entry
        return value

    @field_validator("default_model")
    @classmethod
    def _model_named(cls, value: str) -> str:
        """Any name a request could give (`gpt-3.5-turbo` too): which provider serves it
        is known only once the providers list their models, so it is resolved per use."""
        if not value.strip() or value.startswith("/") or value.endswith("/"):
            raise ValueError("must name a model, like local/smollm2 or gpt-4o-mini")
        return value.strip()

    @property
    def retry_after_limit(self) -> float:
        """The longest Retry-After a model call waits out before failing with it."""
        if self.retry_after_max_seconds is not None:
            return self.retry_after_max_seconds
        return self.llm_timeout

    @field_validator("log_file")
    @classmethod
    def _log_file_writable(cls, value: str | None) -> str | None:
        if value:
            try:
                with open(value, "a", encoding="utf-8"):
                    pass
            except OSError as exc:
                raise ValueError(f"cannot be written: {exc.strerror}") from None
        return value

    @field_validator("api_key", "api_keys")
    @classmethod
    def _static_keys(cls, value: SecretStr | list[SecretStr] | None) -> object:
        keys = value if isinstance(value, list) else [value] if value is not None else []
        for key in keys:
            secret = key.get_secret_value()
            if (
                len(secret) < MIN_STATIC_KEY_CHARS
                or not secret.isascii()
                or not secret.isprintable()
                or secret != secret.strip()
                or "," in secret
            ):
                raise ValueError(
                    f"each key must be at least {MIN_STATIC_KEY_CHARS} printable ASCII "
                    "characters, with no comma and no spaces around it (a short key is "
                    "guessed; `openssl rand -hex 24` makes one)"
                )
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def static_api_keys(self) -> list[str]:
        """API_KEY and API_KEYS, each once."""
        keys = [self.api_key] if self.api_key is not None else []
        keys += self.api_keys
        return list(dict.fromkeys(key.get_secret_value() for key in keys))

    @field_validator("llm_provider", mode="before")
    @classmethod
    def _lower_provider(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @model_validator(mode="after")
    def _seed_default_model(self) -> Settings:
        from symposia.seed_settings import default_model_of

        model = default_model_of(self, explicit="default_model" in self.model_fields_set)
        if model != self.default_model:
            self.default_model = model
        return self

    @model_validator(mode="after")
    def _debug_log_level(self) -> Settings:
        if self.debug and "log_level" not in self.model_fields_set:
            self.log_level = "DEBUG"
        return self

    @property
    def reported_version(self) -> str:
        """VERSION, or the package's: what /health, GET / and the OpenAPI document show."""
        from symposia import __version__

        return self.version or __version__

    def secret_values(self) -> list[str]:
        """Every secret configured (each `SecretStr`, those of compatible servers too), for
        redaction from provider messages."""
        values = [getattr(self, name) for name in type(self).model_fields]
        values += [entry.api_key for entry in self.openai_compatible.values()]
        values += self.api_keys
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr)]

    @cached_property
    def host_is_loopback(self) -> bool:
        """Whether HOST only listens on this machine."""
        if self.host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


# Words in a setting's name that say its value is, or may carry, a credential (a URL may
# hold a password: DATABASE_URL=postgresql://user:pw@host/db).
SECRET_NAME_WORDS = ("KEY", "HASH", "PASSWORD", "SECRET", "TOKEN", "URL")


def _holds_secret(annotation: Any) -> bool:
    """Whether a field's type is, or contains, a `SecretStr` (a model of its own included:
    OPENAI_COMPATIBLE's providers carry keys)."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(field.annotation) for field in annotation.model_fields.values())
    return any(_holds_secret(arg) for arg in get_args(annotation))


def _may_show(name: str) -> bool:
    """Whether the value given for setting `name` may be quoted back in an error."""
    field = Settings.model_fields.get(name)
    if field is None or _holds_secret(field.annotation):
        return False
    return not any(word in name.upper() for word in SECRET_NAME_WORDS)


def _describe(error: ErrorDetails) -> str:
    """One line naming the variable and why; the value only when it cannot be a secret,
    and only a plain one (pydantic's input for a check across settings is all of them)."""
    loc = error["loc"]
    message = error["msg"].removeprefix("Value error, ")
    if not loc:  # a check across settings: its message names them
        return f"invalid settings: {message}"
    name = str(loc[0])
    where = "".join(f"[{part}]" if i == 0 else f".{part}" for i, part in enumerate(loc[1:]))
    value = error.get("input")
    shown = ""
    if len(loc) == 1 and _may_show(name) and isinstance(value, str | int | float | bool):
        shown = f" (got {value!r})"
    return f"invalid setting {name.upper()}{where}: {message}{shown}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning pydantic's report into one line per bad variable. No
    secret's value is ever part of it: it goes to stderr, into every container's log."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(error) for error in exc.errors())) from None
    except PydanticSettingsError as exc:  # a value that is not JSON where JSON is due
        field = re.search(r'field "(\w+)"', str(exc))
        name = field.group(1).upper() if field else "a setting"
        raise SettingsError(f"invalid setting {name}: not valid JSON") from None

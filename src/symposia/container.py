"""Builds the parts of the server from settings and wires them together, once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from symposia.events.select import ManagedEventLog, build_event_log
from symposia.governance.budgets import BudgetStore
from symposia.governance.key_store import KeyLimitStore
from symposia.governance.ledger import UsageLedger
from symposia.governance.meter import Meter
from symposia.governance.rates import KeyRates
from symposia.observability.metrics import Metrics
from symposia.orchestration.generation import Models
from symposia.orchestration.run_loop import RunLoop
from symposia.orchestration.turns import TurnRunner
from symposia.providers.anthropic_adapter import AnthropicAdapter
from symposia.providers.base import Provider
from symposia.providers.bedrock import BedrockAdapter
from symposia.providers.config import ProviderConfig
from symposia.providers.local import LocalProvider
from symposia.providers.openai_adapter import OpenAIAdapter
from symposia.providers.pricing import PriceTable
from symposia.providers.registry import ProviderRegistry
from symposia.providers.resilience import RetryPolicy, Timeouts
from symposia.providers.routes import load_routes
from symposia.providers.scripted import ScriptedProvider
from symposia.security.api_keys import ApiKeyStore
from symposia.security.auth import Authenticator, check_exposure
from symposia.security.client_address import Network, parse_networks
from symposia.security.hosts import HostPolicy
from symposia.security.outbound_urls import parse_prefixes
from symposia.security.rate_limit import RateLimiter
from symposia.security.redact import remember_secrets
from symposia.security.session_store import SessionStore
from symposia.services.completions import CompletionService
from symposia.services.conversations import ChatLimits, ConversationService
from symposia.services.heartbeat import Heartbeat
from symposia.services.idempotency import IdempotencyKeys
from symposia.services.models import ModelCatalog
from symposia.services.replies import ReplyTasks
from symposia.services.reply_leases import ReplyLeases
from symposia.services.responses import ResponseService
from symposia.services.runs import RunService
from symposia.settings import Settings
from symposia.storage.db import DatabaseTimeouts, create_engine, session_factory
from symposia.storage.migrate import migrate
from symposia.storage.repositories import RunRepository
from symposia.storage.sql_alternatives import SqlAlternatives
from symposia.storage.sql_approvals import SqlApprovals
from symposia.storage.sql_conversations import SqlConversationRepository
from symposia.storage.sql_idempotency import SqlIdempotencyKeys
from symposia.storage.sql_replies import SqlReplyRepository
from symposia.storage.sql_responses import SqlResponseRepository
from symposia.storage.sql_runs import SqlRunRepository
from symposia.streaming.audience import Audiences
from symposia.streaming.request_scope import RequestScopes
from symposia.streaming.sse import (
    ActiveStreams,
    Encoder,
    EventSource,
    EventStreamResponse,
    encode,
    event_stream_response,
)
from symposia.streaming.stream_slots import Release, StreamSlots
from symposia.streaming.websocket import OpenSockets
from symposia.tools.approvals import Approvals
from symposia.tools.config import load_servers
from symposia.tools.servers import ToolServers

# OpenAI-compatible servers on a private network often need no key; the SDK wants one.
KEYLESS = "not-needed"


logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Container:
    settings: Settings
    providers: ProviderRegistry
    log: ManagedEventLog
    run_repository: RunRepository
    runs: RunService
    streams: ActiveStreams
    models: ModelCatalog
    engine: AsyncEngine
    conversations: ConversationService
    metrics: Metrics
    api_keys: ApiKeyStore
    auth: Authenticator
    limiter: RateLimiter
    trusted_proxies: list[Network]
    completions: CompletionService
    request_scopes: RequestScopes
    liveness: Heartbeat
    reply_liveness: Heartbeat
    responses: ResponseService
    sockets: OpenSockets
    idempotency: IdempotencyKeys
    hosts: HostPolicy
    stream_slots: StreamSlots
    tools: ToolServers
    approvals: Approvals
    meter: Meter
    budget_liveness: Heartbeat
    audiences: Audiences

    async def start(self) -> None:
        """Bring the schema up to date, refuse to serve unauthenticated beyond loopback,
        and start the heartbeat of this server's runs (marking those of dead servers)."""
        await self.log.start()
        await migrate(self.settings)
        check_exposure(self.settings, await self.api_keys.any_active())
        await self.runs.start()
        await self.liveness.start()
        await self.reply_liveness.start()
        await self.budget_liveness.start()
        self.metrics.loop_lag.start()
        self.request_scopes.start()

    def stream_response(
        self,
        stream_id: str,
        after_seq: int,
        source: EventSource | None = None,
        release: Release | None = None,
        encoder: Encoder = encode,
    ) -> EventStreamResponse:
        """SSE of one stream from `after_seq`, with this server's heartbeat and timeouts:
        from the live log, or from `source` (a stream rebuilt from storage); `release`
        gives its stream slot back when it ends; `encoder` makes each event's frame (the
        named form by default)."""
        return event_stream_response(
            source if source is not None else self.log,
            stream_id,
            after_seq,
            self.streams,
            heartbeat=self.settings.sse_heartbeat_seconds,
            send_timeout=self.settings.sse_send_timeout,
            on_close=release,
            encoder=encoder,
            audiences=self.audiences if source is None else None,
        )

    async def shutdown(self) -> None:
        """Cancel active runs (they record it and close their streams) and end `/v1`
        requests in flight (an error chunk, or a 503), then free providers."""
        await self.liveness.close()
        await self.reply_liveness.close()
        await asyncio.gather(
            self.runs.shutdown(self.settings.shutdown_grace_seconds),
            self.conversations.shutdown(self.settings.shutdown_grace_seconds),
            self.request_scopes.shutdown(self.settings.shutdown_grace_seconds),
        )
        await self.api_keys.settle(self.settings.shutdown_grace_seconds)
        # Viewers here get what the runs wrote as they left (the end, or `interrupted`) and
        # their responses end cleanly; they reconnect elsewhere with Last-Event-ID.
        self.log.stop_readers()
        await self.sockets.go_away()  # each sends what its stream got, then closes (1001)
        for provider in self.providers:
            if isinstance(provider, LocalProvider):
                provider.close()
            elif isinstance(provider, OpenAIAdapter | AnthropicAdapter):
                await provider.close()
        await self.tools.aclose()
        await self.budget_liveness.close()
        await self.meter.close()  # the ledger's last rows and settlements are written
        await self.limiter.close()
        await self.log.aclose()
        await self.engine.dispose()
        await self.metrics.loop_lag.stop()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def remote_providers(settings: Settings) -> list[Provider]:
    """The providers reached over HTTP, each an adapter given its place and credentials."""
    attribution = {"X-Title": settings.app_title}
    if settings.app_url:
        attribution["HTTP-Referer"] = settings.app_url
    openai_headers = {
        name: value
        for name, value in (
            ("OpenAI-Organization", settings.openai_org_id),
            ("OpenAI-Project", settings.openai_project_id),
        )
        if value
    }
    providers: list[Provider] = [
        OpenAIAdapter(
            ProviderConfig(
                "openai",
                _secret(settings.openai_api_key),
                "OPENAI_API_KEY",
                settings.openai_base_url,
                openai_headers,
            )
        ),
        OpenAIAdapter(
            ProviderConfig(
                "openrouter",
                _secret(settings.openrouter_api_key),
                "OPENROUTER_API_KEY",
                settings.openrouter_base_url,
                attribution,
            )
        ),
        AnthropicAdapter(
            ProviderConfig(
                "anthropic",
                _secret(settings.anthropic_api_key),
                "ANTHROPIC_API_KEY",
                settings.anthropic_base_url,
            ),
            settings.provider_max_tokens_default,
        ),
        BedrockAdapter(
            settings.aws_region,
            endpoint_url=settings.bedrock_endpoint_url,
            max_tokens_default=settings.provider_max_tokens_default,
        ),
    ]
    for name, entry in settings.openai_compatible.items():
        key = _secret(entry.api_key) or KEYLESS
        env = f"OPENAI_COMPATIBLE[{name}].api_key"
        providers.append(OpenAIAdapter(ProviderConfig(name, key, env, entry.base_url)))
    return providers


def default_providers(settings: Settings) -> ProviderRegistry:
    return ProviderRegistry(
        [
            LocalProvider(
                settings.local_model_path,
                settings.local_n_ctx,
                settings.local_n_threads,
                settings.provider_max_tokens_default,
            ),
            ScriptedProvider(token_delay=settings.scripted_token_delay),
            *remote_providers(settings),
        ]
    )


def build_container(settings: Settings, providers: ProviderRegistry | None = None) -> Container:
    remember_secrets(settings.secret_values())  # masked in every provider failure
    providers = providers or default_providers(settings)
    providers.use_routes(load_routes(settings.models_file))
    log = build_event_log(settings)
    engine = create_engine(settings.database_url, DatabaseTimeouts.of(settings))
    sessions = session_factory(engine)
    repository = SqlRunRepository(sessions)
    policy = RetryPolicy(
        settings.llm_max_attempts,
        settings.llm_retry_base_seconds,
        max_retry_after=settings.retry_after_limit,
    )
    timeouts = Timeouts(settings.llm_timeout, settings.llm_idle_timeout)
    metrics = Metrics()
    prices = PriceTable.load(settings.prices_file, providers.price_key)
    budgets = BudgetStore(sessions, repository.instance_id, settings.run_lease_seconds)
    meter = Meter(
        KeyLimitStore(sessions),
        budgets,
        KeyRates(settings.redis_url, settings.run_lease_seconds),
        UsageLedger(sessions, budgets),
        prices,
        providers,
        settings.max_tokens_limit,
        on_spend=lambda key, model, usd: metrics.spend.labels(key, model).inc(usd),
        on_refuse=lambda reason: metrics.budget_refusals.labels(reason).inc(),
    )
    models = Models(providers, policy, timeouts, metrics, meter)
    tools = ToolServers.of(
        load_servers(Path(settings.mcp_servers_file) if settings.mcp_servers_file else None),
        call_timeout=settings.mcp_call_timeout_seconds,
        max_result_chars=settings.mcp_max_result_chars,
        max_argument_chars=settings.mcp_max_argument_chars,
    )
    approvals = Approvals(SqlApprovals(sessions), settings.human_timeout_seconds)
    turns = TurnRunner(
        repository,
        log,
        models,
        settings.context_budget_tokens,
        prices,
        tools=tools,
        max_tool_steps=settings.max_tool_steps,
        approvals=approvals,
    )
    # A turn writes at most its tokens (a delta is at least one) and its end.
    loop = RunLoop(
        repository,
        log,
        turns,
        settings.max_tokens_limit + 2,
        settings.run_max_takeovers,
        prices,
        settings.human_timeout_seconds,
        settings.run_dependency_grace_seconds,
    )
    catalog = ModelCatalog(providers, settings.models_cache_seconds)
    service = RunService(
        repository,
        log,
        providers,
        loop,
        catalog,
        settings.run_max_turns,
        settings.max_tokens_limit,
        settings.max_concurrent_runs_per_principal,
        settings.run_lease_seconds,
        settings.run_resume,
        prices,
        max_message_chars=settings.max_message_chars,
    )
    limits = ChatLimits(
        settings.default_model,
        settings.max_message_chars,
        settings.default_max_tokens,
        settings.context_budget_tokens,
    )
    conversation_repository = SqlConversationRepository(sessions)
    reply_repository = SqlReplyRepository(sessions, repository.instance_id)
    reply_tasks = ReplyTasks(
        reply_repository,
        conversation_repository,
        log,
        models,
        settings.event_log_on_redis,
        titles=settings.chat_titles,
        tools=tools,
        max_tool_steps=settings.max_tool_steps,
        approvals=approvals,
        limits=limits,
    )
    reply_leases = ReplyLeases(reply_tasks, reply_repository, log, settings.run_lease_seconds)
    conversations = ConversationService(
        conversation_repository,
        reply_repository,
        reply_tasks,
        log,
        models,
        catalog,
        limits,
        SqlAlternatives(sessions),
    )
    streams = ActiveStreams()
    metrics.watch(lambda: streams.count, lambda: service.active_count)
    sockets = OpenSockets()
    metrics.ws_sockets.set_function(lambda: sockets.count)
    api_keys = ApiKeyStore(sessions)
    limiter = RateLimiter(
        {
            "runs": settings.rate_limit_runs,
            "chat": settings.rate_limit_chat,
            "signin": settings.rate_limit_signin,
        },
        settings.redis_url,
        on_reject=lambda scope: metrics.rate_limited.labels(scope).inc(),
        on_fallback=metrics.redis_fallbacks.inc,
    )
    completions = CompletionService(models, conversations, settings.max_tokens_limit)
    service.meter = meter  # a run naming a model its owner's key may not use is refused
    auth = Authenticator(
        settings,
        api_keys,
        SessionStore(
            sessions,
            settings.session_max_age_seconds,
            settings.session_absolute_max_age_seconds,
        ),
    )
    auth.key_limits = meter.keys  # an expired key is a 401
    return Container(
        settings,
        providers,
        log,
        repository,
        service,
        streams,
        catalog,
        engine,
        conversations,
        metrics,
        api_keys,
        auth,
        limiter,
        parse_networks(settings.trusted_proxies),
        completions,
        RequestScopes(),
        Heartbeat("run", settings.run_heartbeat_seconds, service.renew, service.sweep),
        Heartbeat("reply", settings.run_heartbeat_seconds, reply_leases.renew, reply_leases.sweep),
        ResponseService(
            completions,
            SqlResponseRepository(sessions),
            tools,
            parse_prefixes(",".join(settings.mcp_allowed_urls)),
            settings.max_tool_steps,
        ),
        sockets,
        IdempotencyKeys(SqlIdempotencyKeys(sessions)),
        HostPolicy(settings),
        StreamSlots(settings.max_streams_per_principal),
        tools,
        approvals,
        meter,
        Heartbeat("budget", settings.run_heartbeat_seconds, meter.renew, meter.sweep),
        Audiences(log.batches),
    )

"""The application factory: `create_app(settings)` wires store, providers and engine in the
lifespan, so importing this module builds nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from loopllama import console, telemetry
from loopllama.api.access_log import AccessLog
from loopllama.api.docs_ui import install_docs
from loopllama.api.errors import JSON, BodyLimit, install_error_handlers
from loopllama.api.guards import PathGuard
from loopllama.api.openapi import install_openapi
from loopllama.api.ratelimit import RateLimiter, RateLimitHeaders
from loopllama.api.routes import events, health, keys, runs, usage, webhooks, workflows
from loopllama.api.services import Services
from loopllama.engine.dispatcher import Dispatcher, LocalDispatcher
from loopllama.engine.notify import hub_for
from loopllama.engine.runner import Runner
from loopllama.providers.registry import ProviderRegistry
from loopllama.providers.routing import default_model
from loopllama.settings import Settings
from loopllama.store.db import Database
from loopllama.store.migrate import upgrade
from loopllama.telemetry.http import RequestTelemetry

log = logging.getLogger("loopllama")


def create_app(
    settings: Settings | None = None,
    *,
    providers: ProviderRegistry | None = None,
    migrate: bool = True,
    run_engine: bool = True,
) -> FastAPI:
    """Build the API. `providers` lets tests register fakes; `run_engine=False` serves the API
    without executing runs in this process."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await asyncio.to_thread(upgrade, settings.database.url)
        telemetry.configure(settings.telemetry, settings.database.url)
        db = Database(settings.database.url, pool_size=settings.database.pool_size)
        registry = providers or ProviderRegistry(settings)
        hub = hub_for(db, idle=settings.server.stream_keepalive)  # the streams' keep-alive
        runner = Runner(db, registry, settings, hub)
        await asyncio.to_thread(runner.prices.preload)
        dispatcher = _dispatcher(settings, runner, db)
        model = default_model(settings.models.default_model, settings.providers)
        limiter = RateLimiter(settings.limits)
        app.state.services = Services(
            settings, db, registry, runner, dispatcher, model, hub, limiter
        )
        _log_startup(settings, registry, model)
        webhook_sender = _webhook_sender(settings, db) if run_engine else None
        await hub.start()  # PostgreSQL: LISTEN before the first stream opens
        if run_engine:
            await dispatcher.start()
        if webhook_sender is not None:
            await webhook_sender.start()
        try:
            yield
        finally:
            if webhook_sender is not None:  # stopped beside the runs, not before their grace
                await asyncio.gather(dispatcher.stop(), webhook_sender.stop())
            else:
                await dispatcher.stop()
            await app.state.services.key_usage.aclose()
            await limiter.aclose()
            await registry.aclose()
            await hub.stop()
            await db.dispose()
            telemetry.shutdown()

    app = FastAPI(
        title="LoopLlama API",
        version="0.1.0",
        description="Multi-agent LLM workflows: define a crew, trigger runs, read every step.",
        lifespan=lifespan,
        default_response_class=JSON,
        redoc_url=None,
        # No redirects anywhere: `/v1/workflows/` is a 404, never a `Location` built from the
        # request's Host header.
        redirect_slashes=False,
        docs_url=None,  # install_docs: the same page, with assets served locally
    )
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_body_bytes)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestTelemetry)
    telemetry.instrument(app)
    app.add_middleware(PathGuard)
    if settings.server.access_log:
        app.add_middleware(AccessLog)  # added last: outermost, so it sees every final status
    # Routes are matched in order, and clients poll `GET /v1/runs/{id}` far more than anything
    # else: the run routes come first (no two routers share a path).
    app.include_router(runs.router)
    app.include_router(health.router)
    app.include_router(workflows.router)
    app.include_router(keys.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(usage.router)
    app.include_router(console.router)  # /console and / (not part of the API document)
    return app


def _dispatcher(settings: Settings, runner: Runner, db: Database) -> Dispatcher:
    """SQLite: runs execute in this process. PostgreSQL: through the job queue, in this
    process (unless `run_engine=False`, i.e. `serve --no-worker`) and in `loopllama worker`s."""
    concurrency = settings.engine.max_concurrent_runs
    if db.is_sqlite:
        return LocalDispatcher(
            runner,
            db,
            max_concurrent=concurrency,
            idempotency_hours=settings.engine.idempotency_hours,
            max_per_account=settings.engine.max_concurrent_runs_per_account,
        )
    from loopllama.engine.queue import QueueDispatcher, WorkerSettings

    return QueueDispatcher(
        runner,
        db,
        concurrency=concurrency,
        options=WorkerSettings(),
        max_per_account=settings.engine.max_concurrent_runs_per_account,
    )


def _webhook_sender(settings: Settings, db: Database) -> Any:
    """SQLite: the embedded scheduler. PostgreSQL: this process takes webhook jobs too."""
    if db.is_sqlite:
        from loopllama.webhooks.local import LocalScheduler

        return LocalScheduler(db, settings)
    from loopllama.webhooks.queue import WebhookWorker

    return WebhookWorker(db, settings)


def _log_startup(settings: Settings, registry: ProviderRegistry, model: str) -> None:
    configured = [c.name for c in registry.capabilities() if c.configured]
    log.info("default model: %s", model)
    log.info("providers configured: %s", ", ".join(configured))
    backend = "SQLite" if settings.database.url.startswith("sqlite") else "PostgreSQL"
    log.info("database: %s", backend)
    shared = "in Redis, shared by every API process" if settings.limits.redis_url else "per process"
    log.info("rate limits: %s per key, counted %s", settings.limits.rate_limit, shared)

"""The body of `loopllama worker`: execute runs from the queue until SIGTERM, then stop taking
runs, give the running ones the grace period, hand back the rest, and return (exit status 0)."""

from __future__ import annotations

import asyncio
import logging
import signal

from loopllama import telemetry
from loopllama.engine.notify import hub_for
from loopllama.engine.queue.dispatcher import QueueDispatcher
from loopllama.engine.queue.settings import WorkerSettings
from loopllama.engine.runner import Runner
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import Settings
from loopllama.store.db import Database
from loopllama.store.migrate import upgrade
from loopllama.webhooks.queue import WebhookWorker

log = logging.getLogger("loopllama.worker")


async def run_worker(settings: Settings, options: WorkerSettings, *, migrate: bool = True) -> None:
    for noisy in ("httpx", "httpx2"):  # one INFO line per model call
        logging.getLogger(noisy).setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    if migrate:  # several processes may start at once: the migration takes an advisory lock
        await asyncio.to_thread(upgrade, settings.database.url)
    telemetry.configure(settings.telemetry, settings.database.url)
    db = Database(settings.database.url, pool_size=settings.database.pool_size)
    registry = ProviderRegistry(settings)
    hub = hub_for(db)  # a worker only publishes text deltas; it never listens
    runner = Runner(db, registry, settings, hub)
    await asyncio.to_thread(runner.prices.preload)
    concurrency = settings.engine.max_concurrent_runs
    dispatcher = QueueDispatcher(
        runner,
        db,
        concurrency=concurrency,
        options=options,
        max_per_account=settings.engine.max_concurrent_runs_per_account,
    )
    webhooks = WebhookWorker(db, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await dispatcher.start()
        await webhooks.start()
        log.info("worker ready: up to %d runs at once", concurrency)
        await stop.wait()
        log.info(
            "stopping: taking no new runs; %d running get %ss before they are handed back",
            dispatcher.active,
            options.grace,
        )
        # Together: webhook attempts in flight are cut at once (their claims lapse and they are
        # made again), while runs get their grace period.
        await asyncio.gather(dispatcher.stop(), webhooks.stop())
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await registry.aclose()
        await hub.stop()
        await db.dispose()
        telemetry.shutdown()
    log.info("worker stopped")

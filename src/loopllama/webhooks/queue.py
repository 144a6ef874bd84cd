"""Webhook attempts on PostgreSQL: procrastinate jobs on a queue of their own (`webhooks`).

- The outbox defers one job per delivery in the event's transaction; a failed attempt defers
  the next one, due at its time, in the transaction that records the failure (delayed jobs).
- Any worker process (`loopllama worker`, `serve`) takes them, with a procrastinate worker of
  its own (`LOOPLLAMA_WEBHOOK_CONCURRENCY` attempts at once), apart from the runs' queue: a
  slow endpoint never takes a slot a run could use.
- A job only says "try this delivery now"; the delivery row decides. Its conditional claim
  (webhooks/store.py) lets one worker make the attempt; a second job for the same delivery,
  or a late one, finds nothing to claim. So two workers never send one attempt.
- A job lost with its worker (SIGKILL mid-attempt) is replaced by a sweep: pending deliveries
  due a while ago whose claim lapsed and that no job waits for get a new job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import datetime
from typing import Any

from procrastinate import App, PsycopgConnector
from procrastinate.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.settings import Settings
from loopllama.store.db import Database, libpq_url
from loopllama.webhooks.attempts import Attempts
from loopllama.webhooks.outbox import QUEUE, TASK
from loopllama.webhooks.sender import Sender

log = logging.getLogger("loopllama.webhooks")

SWEEP_EVERY = 10.0  # seconds
LOST_AFTER = 30.0  # seconds past due with no job and no live claim: the job was lost
RESTART_DELAYS = (0.5, 1, 2, 5)

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY("
    "  SELECT ROW(:queue, :task, 0, NULL, NULL, jsonb_build_object('delivery_id', d),"
    "             CAST(:at AS timestamptz))::procrastinate_job_to_defer_v1"
    "  FROM unnest(CAST(:ids AS text[])) AS d))"
)
_LOST = text(
    "SELECT d.id FROM webhook_deliveries d WHERE d.status = 'pending' "
    "AND d.next_attempt_at < now() - make_interval(secs => :lost) "
    "AND (d.claimed_until IS NULL OR d.claimed_until < now()) "
    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.queue_name = :queue "
    "                AND j.status = 'todo' AND j.args->>'delivery_id' = d.id) "
    "LIMIT 1000"
)


async def defer_attempts(
    conn: AsyncConnection, delivery_ids: list[str], at: datetime | None = None
) -> None:
    """Queue an attempt of each delivery in the caller's transaction (`at`: not before)."""
    params = {"queue": QUEUE, "task": TASK, "ids": delivery_ids, "at": at}
    await conn.execute(_DEFER, params)


class _QueueAttempts(Attempts):
    async def scheduled(self, conn: Any, delivery_id: str, when: datetime) -> None:
        await defer_attempts(conn, [delivery_id], when)


class WebhookWorker:
    """This process's share of the webhook queue: a procrastinate worker and the lost-job sweep."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._sender = Sender(settings.tools.http_allow_hosts, settings.webhooks.timeout)
        self._attempts = _QueueAttempts(db, self._sender, settings.webhooks.delays)
        connector = PsycopgConnector(
            conninfo=libpq_url(db.url),
            min_size=1,
            max_size=4,
            timeout=5,
            name="loopllama-webhooks",
            kwargs={"connect_timeout": 5},
        )
        self.app = App(connector=connector)
        self.app.task(name=TASK, queue=QUEUE)(self._deliver)
        self._stopping = False
        self._stopped = asyncio.Event()
        self._worker: Worker | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def _deliver(self, delivery_id: str) -> None:
        await self._attempts.make(delivery_id)

    async def start(self) -> None:
        self._stopping = False
        self._stopped = asyncio.Event()
        await self.app.open_async()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="webhook-worker"),
            asyncio.create_task(self._sweep_forever(), name="webhook-sweeper"),
        ]

    async def stop(self) -> None:
        """Stop taking attempts; those in flight are cut (their claims lapse, and another
        worker, or this one after a restart, makes them again)."""
        self._stopping = True
        self._stopped.set()
        if self._worker is not None:
            self._worker.stop()
        _, late = await asyncio.wait(self._tasks, timeout=5) if self._tasks else (set(), set())
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.app.close_async()
        await self._sender.aclose()

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            self._worker = Worker(
                app=self.app,
                queues=[QUEUE],
                name=f"webhooks:{socket.gethostname()}:{os.getpid()}",
                concurrency=self._settings.webhooks.concurrency,
                fetch_job_polling_interval=0.5,  # delayed jobs come due without a NOTIFY
                shutdown_graceful_timeout=0,
                listen_notify=True,
                delete_jobs="successful",
                install_signal_handlers=False,
            )
            try:
                await self._worker.run()
                failures = 0
            except Exception as error:
                log.warning("webhook worker stopped: %s", error)
            if self._stopping:
                return
            await asyncio.sleep(RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)])
            failures += 1

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), SWEEP_EVERY)
                return
            try:
                async with self._db.write() as conn:
                    params = {"lost": LOST_AFTER, "queue": QUEUE}
                    lost = list((await conn.execute(_LOST, params)).scalars())
                    if lost:
                        await defer_attempts(conn, lost)
                if lost:
                    log.warning("queued %d webhook delivery(ies) whose job was lost", len(lost))
            except Exception as error:
                log.debug("webhook sweep skipped: %s", error)

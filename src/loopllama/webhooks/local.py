"""The embedded webhook scheduler (SQLite): sends due deliveries from this process.

It runs beside the engine, never inside a run: each attempt is its own task, at most
`concurrency` at once, so a slow or dead endpoint delays neither runs nor other endpoints. It
wakes when a commit recorded deliveries (store/db.py `on_outbox`), when a redelivery is asked
for, and when the earliest pending attempt comes due; nothing is kept in memory that the
table does not hold, so a restart resumes every pending delivery where it stood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC

from loopllama.ids import utcnow
from loopllama.settings import Settings
from loopllama.store.db import Database
from loopllama.webhooks import store as hooks
from loopllama.webhooks.attempts import Attempts
from loopllama.webhooks.sender import Sender

log = logging.getLogger("loopllama.webhooks")

IDLE_CHECK = 60.0  # seconds: the longest sleep, in case a wake-up was missed


class LocalScheduler:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._concurrency = settings.webhooks.concurrency
        self._sender = Sender(settings.tools.http_allow_hosts, settings.webhooks.timeout)
        self._attempts = Attempts(db, self._sender, settings.webhooks.delays)
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        # One process per SQLite file: a claim left in the table is a dead process's.
        async with self._db.write() as conn:
            await hooks.release_claims(conn)
        self._db.on_outbox = self.wake
        self._loop_task = asyncio.create_task(self._run(), name="webhook-scheduler")

    async def stop(self) -> None:
        """Stop sending. Attempts in flight are cancelled: their claims lapse, and the next
        start makes them again (receivers deduplicate on `webhook-id`)."""
        self._db.on_outbox = None
        tasks = [t for t in (self._loop_task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._sender.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = IDLE_CHECK
            try:
                delay = await self._pass()
            except Exception:  # a database hiccup: try again shortly
                log.exception("webhook scheduler pass failed")
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _pass(self) -> float:
        """Start the due attempts that fit; returns how long to sleep."""
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return IDLE_CHECK  # an attempt that ends wakes the loop
        now = utcnow()
        async with self._db.read() as conn:
            # Attempts in flight here are claimed: the query skips them, unless their claim
            # has not committed yet, hence the extra room.
            ids = await hooks.due(conn, now, free + len(self._inflight))
            when = await hooks.next_due(conn, now)
        for delivery_id in ids:
            if delivery_id in self._inflight or len(self._inflight) >= self._concurrency:
                continue
            self._inflight[delivery_id] = asyncio.create_task(self._attempt(delivery_id))
        if when is None:
            return IDLE_CHECK
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return min(IDLE_CHECK, max(0.0, (when - utcnow()).total_seconds()))

    async def _attempt(self, delivery_id: str) -> None:
        try:
            await self._attempts.make(delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s: attempt failed internally", delivery_id)
        finally:
            self._inflight.pop(delivery_id, None)
            self._wake.set()

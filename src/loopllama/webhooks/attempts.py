"""One attempt of one delivery, the same on both backends: claim it, send it, record the result.

The claim is its own short transaction (committed before the HTTP request, so no database lock
is held while a slow endpoint thinks); the result is another. After a failed attempt `n`, the
next is due `schedule[n-1]` seconds later; past the end of the schedule, or after a one-shot
redelivery, the delivery is `failed`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import orjson

from loopllama.ids import iso, utcnow
from loopllama.store.db import Database
from loopllama.webhooks import signing
from loopllama.webhooks import store as hooks
from loopllama.webhooks.sender import Outcome, Sender

log = logging.getLogger("loopllama.webhooks")


def body_of(kind: str, created_at: datetime, data: object) -> bytes:
    """The delivery body: `{"type", "timestamp", "data"}` (the event's type, time and data)."""
    return orjson.dumps({"type": kind, "timestamp": iso(created_at), "data": data})


class Attempts:
    """Makes attempts for this process; `make` returns when the next one is due (or None)."""

    def __init__(self, db: Database, sender: Sender, schedule: tuple[float, ...]) -> None:
        self._db = db
        self._sender = sender
        self._schedule = schedule

    async def make(self, delivery_id: str) -> datetime | None:
        hold = self._sender.timeout + hooks.CLAIM_MARGIN
        async with self._db.write() as conn:
            job = await hooks.claim(conn, delivery_id, hold)
            if job is None:
                await hooks.drop_disabled(conn, delivery_id)
                return None
        body = body_of(job["type"], job["created_at"], job["data"])
        headers = signing.headers(job["secret"], delivery_id, body.decode())
        outcome = await self._sender.send(job["url"], body, headers)
        return await self._record(job, outcome)

    async def _record(self, job: dict, outcome: Outcome) -> datetime | None:
        delivery_id, attempt = job["id"], job["attempts"]
        finished = outcome.succeeded or job["one_shot"] or attempt > len(self._schedule)
        when = None
        async with self._db.write() as conn:
            if finished:
                await hooks.finish(
                    conn,
                    delivery_id,
                    job["claim"],
                    succeeded=outcome.succeeded,
                    status_code=outcome.status_code,
                    error=outcome.error,
                )
            else:
                when = utcnow() + timedelta(seconds=self._schedule[attempt - 1])
                mine = await hooks.retry_at(
                    conn,
                    delivery_id,
                    job["claim"],
                    when,
                    status_code=outcome.status_code,
                    error=outcome.error,
                )
                if mine:
                    await self.scheduled(conn, delivery_id, when)
        if not outcome.succeeded:
            # The delivery id only: the URL may carry a token, the headers carry the signature.
            log.info(
                "webhook delivery %s: attempt %d failed (%s)%s",
                delivery_id,
                attempt,
                outcome.status_code or "no answer",
                f"; next at {iso(when)}" if when else "; giving up",
            )
        return when

    async def scheduled(self, conn: object, delivery_id: str, when: datetime) -> None:
        """Hook for a scheduler that must be told of the next attempt in the same transaction
        (the queue defers a job); the local scheduler finds due rows itself."""

"""`last_used_at` without a write per request: at most one write per key per minute.

The key lookup already reads `last_used_at`; only when it is a minute old (or never set) does
this process record a use, in a background transaction of its own, never inside the request's
(on SQLite a write waits for the one writer; the request must not). Within a process a key is
written at most once a minute whatever the lookups saw; across processes the guarded UPDATE
(statements.KEY_TOUCH) lets only the first of several racing writes change the row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from loopllama.store.db import Database
from loopllama.store.keys import touch_key

log = logging.getLogger("loopllama.api")

EVERY = timedelta(minutes=1)
_EVERY_SECONDS = EVERY.total_seconds()
_FORGET_PAST = 10_000  # keys remembered before the stale ones are dropped


class KeyUsage:
    """Schedules the coarse `last_used_at` writes of one API process."""

    def __init__(self) -> None:
        self._written: dict[str, float] = {}  # key id -> monotonic time of the last write
        self._tasks: set[asyncio.Task[None]] = set()

    def note(self, db: Database, key_id: str, last_used_at: datetime | None, now: datetime) -> None:
        """A request was authenticated with `key_id` at `now`; `last_used_at` as just read."""
        if last_used_at is not None:
            if last_used_at.tzinfo is None:  # SQLite hands back naive UTC
                last_used_at = last_used_at.replace(tzinfo=UTC)
            if now - last_used_at < EVERY:
                return
        clock = time.monotonic()
        if clock - self._written.get(key_id, -_EVERY_SECONDS) < _EVERY_SECONDS:
            return  # this process wrote it a moment ago; the lookup may predate the commit
        if len(self._written) >= _FORGET_PAST:
            self._written = {k: t for k, t in self._written.items() if clock - t < _EVERY_SECONDS}
        self._written[key_id] = clock
        task = asyncio.get_running_loop().create_task(self._write(db, key_id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, db: Database, key_id: str, now: datetime) -> None:
        try:
            async with db.write() as conn:
                await touch_key(conn, key_id, now, now - EVERY)
        except Exception as error:  # a missed "last used" is not worth failing anything for
            log.debug("could not record the use of key %s: %s", key_id, error)

    async def aclose(self) -> None:
        """Let the writes under way finish (before the database is disposed of)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

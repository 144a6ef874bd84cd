"""Getting runs executed: a small `Dispatcher` interface and its in-process implementation.

The tables are the source of truth; a dispatcher only has to deliver "advance run X" at least
once. `LocalDispatcher` does so with asyncio tasks in this process (the embedded default); a
queue-backed dispatcher for several worker processes implements the same four methods.

- `submit` while the run is being advanced marks it to be advanced again afterwards, so a
  wake-up is never lost and one run is never advanced twice at once.
- `start` recovers: runs left `queued` or `running` by a process that died are submitted
  again, and paused runs with a deadline get their timers back.
- A database that is down does not lose runs: the pass is retried with backoff.
- Slots are shared fairly (engine/fairness.py): round-robin across the accounts with runs
  waiting, and at most LOOPLLAMA_MAX_CONCURRENT_RUNS_PER_ACCOUNT per account.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama import telemetry
from loopllama.engine import transitions as t
from loopllama.engine.fairness import FairSlots
from loopllama.engine.runner import Runner
from loopllama.ids import utcnow
from loopllama.settings import Settings
from loopllama.store.db import Database
from loopllama.store.idempotency import purge_expired
from loopllama.store.runs import account_of_run, pause_deadlines, unfinished_run_ids

log = logging.getLogger(__name__)

DB_RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30)
PURGE_EVERY = 3600.0  # seconds between purges of expired idempotency keys


def import_providers_in_background(settings: Settings) -> None:
    """Import the configured providers' SDKs in a thread, as a process starts executing runs.

    The registry builds a provider at its first model call. Importing the `anthropic` SDK takes
    about a second of CPU, many more on a busy machine (measured: 8-15 s with the 2 cores shared
    four ways), and done on the event loop it stalls everything the process does: the first
    burst of runs, the API requests, the worker's heartbeats. A model call that comes before the
    thread is done waits for the same import (Python's import lock), as it did before.
    """
    modules = []
    if settings.providers.anthropic_configured:
        modules.append("loopllama.providers.anthropic")
    if settings.providers.openai_configured:
        modules.append("loopllama.providers.openai")

    def load() -> None:
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as error:  # the model call reports it where it matters
                log.debug("could not preload %s: %s", module, error)

    if modules:
        threading.Thread(target=load, name="import-providers", daemon=True).start()


async def purge_forever(db: Database, retention_hours: int) -> None:
    """Forget expired Idempotency-Keys, now and then every `PURGE_EVERY` seconds."""
    while True:
        try:
            async with db.write() as conn:
                purged = await purge_expired(conn, retention_hours)
            if purged:
                log.info("purged %d expired idempotency key(s)", purged)
        except Exception as error:  # the next round tries again
            log.warning("could not purge idempotency keys: %s", error)
        await asyncio.sleep(PURGE_EVERY)


class Dispatcher(Protocol):
    async def enqueue(self, conn: AsyncConnection, run_id: str) -> None:
        """Record, in the caller's transaction, that `run_id` must be advanced.

        Called by the transaction that makes a run runnable (trigger, respond), so no
        committed run lacks its wake-up and no wake-up points at an uncommitted run. After
        the commit the caller also calls `submit`.
        """
        ...

    async def start(self) -> None:
        """Begin executing runs, including those a dead process left behind."""
        ...

    async def stop(self) -> None:
        """Stop executing; unfinished runs stay in the database for the next start."""
        ...

    def submit(self, run_id: str, account: str | None = None) -> None:
        """Have `run_id` advanced (now or soon). Safe to call any number of times. `account`:
        the run's, if the caller knows it (it saves a read)."""
        ...

    async def cancel_in(self, conn: AsyncConnection, run_id: str) -> None:
        """Record, in the caller's transaction (the one that cancels the run), that whichever
        process advances `run_id` must stop at once. After the commit the caller also calls
        `cancel`."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop advancing `run_id` in this process (its model call in flight is aborted)."""
        ...

    def schedule_deadline(self, run_id: str, deadline: datetime) -> None:
        """Decide the run's pause at `deadline` if nobody answered it by then."""
        ...


class LocalDispatcher:
    """Runs advance as asyncio tasks of this process, at most `max_concurrent` at once."""

    def __init__(
        self,
        runner: Runner,
        db: Database,
        *,
        max_concurrent: int,
        shutdown_grace: float = 10.0,
        idempotency_hours: int = 24,
        max_per_account: int | None = None,
    ) -> None:
        self._runner = runner
        self._db = db
        self._slots = FairSlots(max_concurrent, max_per_account)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Until `start`, nothing executes here (an API-only process keeps runs for the engine).
        self._running = False
        self._shutdown_grace = shutdown_grace
        self._purger: asyncio.Task[None] | None = None
        self._idempotency_hours = idempotency_hours

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def enqueue(self, conn: AsyncConnection, run_id: str) -> None:
        # In one process the table row is the record: a restart finds runnable runs by status.
        return None

    async def cancel_in(self, conn: AsyncConnection, run_id: str) -> None:
        # In one process `cancel` reaches the run directly.
        return None

    async def start(self) -> None:
        self._running = True
        import_providers_in_background(self._runner.settings)
        self._purger = asyncio.create_task(purge_forever(self._db, self._idempotency_hours))
        async with self._db.read() as conn:
            leftovers = await unfinished_run_ids(conn)
            deadlines = await pause_deadlines(conn)
        if leftovers:
            log.info("recovering %d unfinished run(s)", len(leftovers))
        for run_id in leftovers:
            self.submit(run_id)
        for run_id, deadline in deadlines:
            self.schedule_deadline(run_id, deadline)

    async def stop(self) -> None:
        """Take no new work; let runs in flight reach their next pause or end for a grace
        period (an approved tool call cut short would come back as "outcome unknown"), then
        cancel the rest. Whatever is cancelled resumes at the next start."""
        self._running = False
        if self._purger is not None:
            self._purger.cancel()
            await asyncio.gather(self._purger, return_exceptions=True)
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._again.clear()
        tasks = list(self._tasks.values())
        if tasks and self._shutdown_grace > 0:
            log.info("waiting up to %ss for %d run(s) in flight", self._shutdown_grace, len(tasks))
            await asyncio.wait(tasks, timeout=self._shutdown_grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, run_id: str, account: str | None = None) -> None:
        if not self._running:
            return
        if run_id in self._tasks:
            self._again.add(run_id)
            return
        self._tasks[run_id] = asyncio.create_task(
            self._advance(run_id, account), name=f"run:{run_id}"
        )

    def cancel(self, run_id: str) -> None:
        self._again.discard(run_id)
        self._runner.abort(run_id)

    async def _advance(self, run_id: str, account: str | None) -> None:
        failures = 0
        try:
            while True:
                try:
                    if account is None:
                        async with self._db.read() as conn:
                            account = await account_of_run(conn, run_id) or ""
                    async with self._slots.hold(account):
                        result = await self._runner.advance(run_id)
                except (OperationalError, DBAPIError, PoolTimeout, OSError) as error:
                    # The database is unreachable: the run is safe in it; try again later.
                    delay = DB_RETRY_DELAYS[min(failures, len(DB_RETRY_DELAYS) - 1)]
                    failures += 1
                    log.warning(
                        "run %s: database error (%s); retrying in %ss", run_id, error, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                except Exception:
                    log.exception("run %s: internal error", run_id)
                    await self._fail_internal(run_id)
                    return
                if result is not None and result.pause_deadline is not None:
                    self.schedule_deadline(run_id, result.pause_deadline)
                if run_id not in self._again:
                    return
                self._again.discard(run_id)
        finally:
            self._tasks.pop(run_id, None)

    async def _fail_internal(self, run_id: str) -> None:
        try:
            async with self._db.write() as conn:
                await t.fail_run_without_step(
                    conn, run_id, "internal error while executing the run (see the server log)"
                )
            telemetry.run_reached("failed")
        except Exception:
            log.exception("run %s: could not record the failure", run_id)

    # -- pause deadlines -----------------------------------------------------------------------

    def schedule_deadline(self, run_id: str, deadline: datetime) -> None:
        if not self._running:
            return
        if deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=utcnow().tzinfo)
        delay = max(0.0, (deadline - utcnow()).total_seconds())
        previous = self._timers.pop(run_id, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._timers[run_id] = loop.call_later(
            delay, lambda: asyncio.create_task(self._expire(run_id))
        )

    async def _expire(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        try:
            async with self._db.write() as conn:
                decided = await t.expire_pause(conn, run_id, utcnow())
        except Exception:
            log.exception("run %s: could not expire its pause", run_id)
            return
        if decided == "failed":
            telemetry.run_reached("failed")
        if decided == "rejected":
            self.submit(run_id)

"""`QueueDispatcher`: runs advanced by procrastinate jobs on PostgreSQL, in any number of
`loopllama worker` (and `serve`) processes on any number of machines.

How a run travels (see jobs.py for the SQL):

- trigger / respond: the API process defers an `advance_run` job in the transaction that makes
  the run runnable; PostgreSQL's NOTIFY at commit wakes a worker (commit to first step
  started: p50 6 ms, bench/dispatch.py).
- a worker takes as many waiting jobs as it has free slots in one query (`_BatchWorker`), so
  500 runs triggered at once start together rather than one fetch round trip after another.
- a worker's job calls `Runner.advance`, which drives the run until it pauses or ends (one job
  per wake-up, not per step: procrastinate sends no notification when a run's lock frees). Its
  transactions use the engine's own connections (`Database.engine_lane`), never queued behind
  the API requests of the same process.
- a pause with a deadline defers a lock-less `expire_pause` job due at the deadline.
- fairness: each wake-up gets its account's next turn as its priority (jobs.py, migration
  0009), so workers take runs round-robin across accounts; a job whose account already holds
  LOOPLLAMA_MAX_CONCURRENT_RUNS_PER_ACCOUNT runs in this process goes back to the queue with
  its turn, due `AT_CAP_RETRY` seconds later, and the slot serves another account.
- cancel: the API's transaction NOTIFYs `loopllama_cancel` with the run id; every worker
  LISTENs on it and the one advancing the run aborts it (its model call's HTTP request is
  closed). The cancel itself is already recorded, and fenced: a late write of the worker that
  held the run is refused.

What happens when something fails:

- a worker dies (SIGKILL, lost machine): its heartbeat ages; after `stalled_after` seconds a
  sweep in a live worker hands its jobs back and another worker resumes the runs from the
  database (completed steps are kept; a tool call that had started is never repeated).
- SIGTERM: the worker takes no new job, lets its runs go on for `grace` seconds (heart-beating
  all the while), then cancels the rest and hands them back at once, and exits.
- the database goes away: procrastinate's worker stops when its connection fails; the
  supervisor here starts it again (backing off) once the database answers, and hands back the
  jobs the previous incarnation still held.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
from datetime import datetime
from typing import Any, Literal

import psycopg
from procrastinate import App, PsycopgConnector, RetryDecision
from procrastinate import exceptions as pq_errors
from procrastinate import utils as pq_utils
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy
from procrastinate.worker import Worker
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama import telemetry
from loopllama.engine import transitions as t
from loopllama.engine.dispatcher import PURGE_EVERY, import_providers_in_background
from loopllama.engine.queue import jobs
from loopllama.engine.queue.settings import WorkerSettings
from loopllama.engine.runner import Runner
from loopllama.ids import utcnow
from loopllama.store.db import Database
from loopllama.store.idempotency import purge_expired
from loopllama.store.runs import account_of_run

log = logging.getLogger(__name__)

# The database (or the way to it) failed: the run is safe in it, try again later.
TRANSIENT = (OperationalError, DBAPIError, PoolTimeout, OSError, pq_errors.ConnectorException)
RESTART_DELAYS = (0.2, 0.5, 1, 2, 5)
ORPHAN_SWEEP_EVERY = 30.0  # seconds; the deadline and stalled-job sweeps run every sweep
# A job the database says this worker runs, but which it does not (its fetch answer or its
# final status was lost with a connection): handed back after this long. Well above the
# queue pool's connection timeout (5 s), so a status update still waiting for a connection
# is not mistaken for a lost one.
ZOMBIE_AFTER = 15.0
# No connection attempt may hang on a server that is shutting down; a LISTEN connection to a
# machine that vanished is noticed within about a minute.
QUEUE_CONNECTION: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
_BEAT = "UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = %s"
FETCH_BATCH = 100  # jobs taken in one query at most (jobs.FETCH_MANY)


class _WakeUp(asyncio.Event):
    """procrastinate's "a job was inserted" signal, without a lost wake-up.

    procrastinate's worker clears this event after every fetch. A notification that arrives
    while a fetch is running (the new job not yet visible to it, so it finds nothing) is
    cleared with it, and its job then waits for the next poll (`poll_interval`) instead of
    starting at once. Here a clear only takes effect if nothing was set since the worker last
    woke up; otherwise the worker looks once more. (If a procrastinate release renames the
    attribute this replaces, the worker simply keeps its own event: the old behaviour.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._sets = 0
        self._seen = 0

    def set(self) -> None:
        self._sets += 1
        super().set()

    async def wait(self) -> Literal[True]:
        result = await super().wait()
        self._seen = self._sets
        return result

    def clear(self) -> None:
        if self._sets == self._seen:
            super().clear()


class _BatchWorker(Worker):
    """procrastinate's worker, taking up to as many jobs as it has free slots in one query.

    procrastinate fetches one job per round trip. With hundreds of runs in flight on the same
    event loop (and, in `serve`, hundreds of requests), each fetch also waits for its turn on the
    loop: a burst of 500 runs started at a few dozen per second, and most of them sat queued
    while the worker had room for all. Everything else (slots, job tasks, completion, the
    wake-up event) is procrastinate's, as in `Worker._fetch_and_process_jobs` of 3.10.
    """

    async def _fetch_and_process_jobs(self) -> None:
        while not self._stop_event.is_set():
            acquire = asyncio.create_task(self._job_semaphore.acquire())
            fetched: list[Job] = []
            try:
                await pq_utils.wait_any(acquire, self._stop_event.wait())
                if self._stop_event.is_set():
                    break
                assert self.worker_id is not None
                # The slot just taken, and those no job holds.
                free = self.concurrency - len(self._running_jobs)
                fetched = await self._fetch(min(free, FETCH_BATCH))
            finally:
                if (not fetched or self._stop_event.is_set()) and acquire.done():
                    self._job_semaphore.release()
                self._new_job_event.clear()
            if not fetched:
                break
            if self._stop_event.is_set():
                # Stopping began while the fetch was on its way (a SIGTERM between the check
                # above and the answer): these jobs were never started here, so they go back to
                # the queue at once for another worker, not into this one's grace period.
                await self._hand_back(fetched)
                break
            for index, job in enumerate(fetched):
                if index:  # free (only this loop takes slots): does not wait
                    await self._job_semaphore.acquire()
                self._start(job)

    async def _fetch(self, limit: int) -> list[Job]:
        rows = await self.app.connector.execute_query_all_async(
            jobs.FETCH_MANY, queues=self.queues, worker_id=self.worker_id, limit=limit
        )
        return [Job.from_row(row) for row in rows]

    async def _hand_back(self, fetched: list[Job]) -> None:
        for job in fetched:
            await self.app.job_manager.retry_job(job)

    def _start(self, job: Job) -> None:
        job_id = job.id
        context = JobContext(
            app=self.app,
            worker_name=self.worker_name,
            worker_queues=self.queues,
            additional_context=self.additional_context.copy() if self.additional_context else {},
            job=job,
            abort_reason=lambda job_id=job_id: (
                self._job_ids_to_abort.get(job_id) if job_id else None
            ),
            start_timestamp=time.time(),
        )
        task = asyncio.create_task(
            self._process_job(context), name=f"process job {job.task_name}[{job.id}]"
        )
        self._running_jobs[task] = context

        def on_job_complete(task: asyncio.Task[Any]) -> None:
            del self._running_jobs[task]
            self._job_semaphore.release()

        task.add_done_callback(on_job_complete)


AT_CAP_RETRY = 0.2  # seconds before a job of an account at its cap is offered again


class AccountAtCap(Exception):
    """This process already advances as many runs of the job's account as it may."""


class _HandBack(BaseRetryStrategy):
    """Where an interrupted job goes: back to the queue, for any worker to pick up."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, AccountAtCap):  # keeps its priority, i.e. its turn
            return RetryDecision(retry_in={"seconds": AT_CAP_RETRY})
        if isinstance(exception, (asyncio.CancelledError, pq_errors.JobAborted)):
            return RetryDecision(retry_in={"seconds": 0})  # a stopping worker: resume now
        if isinstance(exception, TRANSIENT):
            return RetryDecision(retry_in={"seconds": min(0.5 * 2**job.attempts, 10)})
        return None


def libpq_url(url: str) -> str:
    """The database URL as libpq (psycopg) reads it: no SQLAlchemy driver suffix."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class QueueDispatcher:
    """The `Dispatcher` of the scale-out topology. `enqueue` works in every process (API-only
    ones too); `start` turns this process into a worker as well."""

    def __init__(
        self,
        runner: Runner,
        db: Database,
        *,
        concurrency: int,
        options: WorkerSettings,
        max_per_account: int | None = None,
    ) -> None:
        self._runner = runner
        self._max_per_account = max_per_account
        self._per_account: dict[str, int] = {}  # runs this process advances, by account
        self._db = db
        self._concurrency = concurrency
        self._options = options
        self._name = f"{socket.gethostname()}:{os.getpid()}"
        # procrastinate logs two INFO lines per job; ours say what matters.
        quiet = max(logging.WARNING, logging.getLogger().getEffectiveLevel())
        logging.getLogger("procrastinate").setLevel(quiet)
        self._conninfo = libpq_url(db.url)
        connector = PsycopgConnector(
            conninfo=self._conninfo,
            min_size=1,
            max_size=options.queue_pool_size,
            timeout=5,  # waiting for a connection (the database is down): give up after this
            name="loopllama-queue",
            kwargs=QUEUE_CONNECTION,
        )
        self.app = App(connector=connector)
        retry = _HandBack()
        self.app.task(name=jobs.ADVANCE, queue=jobs.QUEUE, retry=retry)(self._advance_run)
        self.app.task(name=jobs.EXPIRE, queue=jobs.QUEUE, retry=retry)(self._expire_pause)
        self._worker: Worker | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._heart: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._last_purge: float | None = None
        # Set once stopping is done with the worker; the heart and the sweeper end on it
        # (not cancelled: a psycopg connect cancelled half-way leaks its connection).
        self._stopped = asyncio.Event()
        self._stopping = False
        self._connected_since: float | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._advancing: set[str] = set()
        self._handed_back = 0
        self._db_errors = False  # since the last collection of cut connections
        self._holding: set[int] = set()  # job ids
        self._suspects: dict[int, float] = {}  # job id -> first seen not running here

    # -- the Dispatcher protocol ---------------------------------------------------------------

    async def enqueue(self, conn: AsyncConnection, run_id: str) -> None:
        await jobs.defer_advance(conn, run_id)

    def submit(self, run_id: str, account: str | None = None) -> None:
        """Nothing to do: the commit that recorded the job notified the workers."""

    async def cancel_in(self, conn: AsyncConnection, run_id: str) -> None:
        await jobs.cancel_run_jobs(conn, run_id)

    def cancel(self, run_id: str) -> None:
        # The NOTIFY reaches this process too; aborting here first saves its round trip.
        self._runner.abort(run_id)

    def schedule_deadline(self, run_id: str, deadline: datetime) -> None:
        self._spawn(self._defer_expiry(run_id, deadline))

    async def start(self) -> None:
        """Become a worker: take jobs, sweep for dead workers' runs and overdue pauses."""
        self._stopping = False
        self._stopped = asyncio.Event()
        self._last_purge = None  # expired idempotency keys: purged at the first sweep
        settings = self._runner.settings
        import_providers_in_background(settings)
        self._db.open_engine_lane(settings.database.engine_pool_size)
        await self.app.open_async()
        # Every task started here (the jobs too, started by the supervisor's worker) uses the
        # engine's connections.
        with self._db.engine_lane():
            self._supervisor = asyncio.create_task(self._supervise(), name="queue-worker")
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="queue-sweeper")
            self._heart = asyncio.create_task(self._beat_forever(), name="queue-heartbeat")
            self._listener = asyncio.create_task(self._listen_forever(), name="queue-cancels")
        await self._wait_registered(seconds=10)

    async def stop(self, grace: float | None = None) -> None:
        """Take no new job; give running ones `grace` seconds, then hand them back."""
        self._stopping = True
        grace = self._options.grace if grace is None else grace
        running, self._handed_back = self.active, 0
        worker = self._worker
        if worker is not None:
            worker.shutdown_graceful_timeout = grace
            worker.stop()
        if self._supervisor is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._supervisor), timeout=grace + 15)
            except TimeoutError:
                self._supervisor.cancel()
                await asyncio.gather(self._supervisor, return_exceptions=True)
        # The heart kept beating through the grace period (procrastinate's own heartbeat stops
        # at once), or other workers would have taken this one for dead and resumed its runs.
        self._stopped.set()
        helpers = [
            task for task in (self._heart, self._sweeper, self._listener) if task is not None
        ]
        await asyncio.gather(*helpers, return_exceptions=True)
        if self._background:
            _, late = await asyncio.wait(self._background, timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if running:
            handed = self._handed_back
            log.info("%d run(s) finished, %d handed back", running - handed, handed)
        with contextlib.suppress(Exception):
            await self.app.close_async()

    @property
    def active(self) -> int:
        """Runs this process is advancing right now."""
        return len(self._advancing)

    # -- the tasks --------------------------------------------------------------------------

    async def _advance_run(self, run_id: str) -> None:
        account = await self._take_account_share(run_id)
        self._advancing.add(run_id)
        try:
            result = await self._runner.advance(run_id)
        except TRANSIENT as error:
            log.warning("run %s: database unavailable (%s); handing it back", run_id, error)
            self._note_db_error(error)
            raise
        except asyncio.CancelledError:  # stopping: the retry strategy hands the job back
            self._handed_back += 1
            raise
        except Exception:
            log.exception("run %s: internal error", run_id)
            await self._fail_internal(run_id)
            return
        finally:
            self._advancing.discard(run_id)
            if account is not None:
                self._release_account_share(account)
        if result is not None and result.pause_deadline is not None:
            await self._defer_expiry(run_id, result.pause_deadline)

    async def _take_account_share(self, run_id: str) -> str | None:
        """Count the run against its account's cap in this process (None: no cap set);
        `AccountAtCap` when the account has no share left here."""
        if self._max_per_account is None:
            return None
        async with self._db.read() as conn:
            account = await account_of_run(conn, run_id) or ""
        held = self._per_account.get(account, 0)
        if held >= self._max_per_account:
            raise AccountAtCap(account)
        self._per_account[account] = held + 1
        return account

    def _release_account_share(self, account: str) -> None:
        held = self._per_account[account] - 1
        if held:
            self._per_account[account] = held
        else:
            del self._per_account[account]

    async def _expire_pause(self, run_id: str) -> None:
        async with self._db.write() as conn:
            decided = await t.expire_pause(conn, run_id, utcnow())
            if decided == "rejected":
                await jobs.defer_advance(conn, run_id)
        if decided == "failed":
            telemetry.run_reached("failed")

    async def _fail_internal(self, run_id: str) -> None:
        try:
            async with self._db.write() as conn:
                await t.fail_run_without_step(
                    conn, run_id, "internal error while executing the run (see the server log)"
                )
            telemetry.run_reached("failed")
        except Exception:
            log.exception("run %s: could not record the failure", run_id)

    async def _defer_expiry(self, run_id: str, deadline: datetime) -> None:
        try:
            async with self._db.write() as conn:
                await jobs.defer_expiry(conn, run_id, deadline)
        except TRANSIENT as error:  # the sweep for overdue pauses catches it later
            log.warning("run %s: could not schedule its pause deadline (%s)", run_id, error)

    # -- the procrastinate worker, restarted when the database comes back ----------------------

    def _new_worker(self) -> Worker:
        worker = _BatchWorker(
            app=self.app,
            queues=[jobs.QUEUE],
            name=self._name,
            concurrency=self._concurrency,
            fetch_job_polling_interval=self._options.poll_interval,
            abort_job_polling_interval=max(self._options.poll_interval, 2.0),
            shutdown_graceful_timeout=0,  # an internal stop (database lost): hand back at once
            listen_notify=True,
            delete_jobs="successful",  # keeps the fetch query fast (procrastinate #1242)
            install_signal_handlers=False,
            update_heartbeat_interval=self._options.heartbeat,
            stalled_worker_timeout=self._options.stalled_after,
            worker_middleware=[self._track],
        )
        worker._new_job_event = _WakeUp()
        return worker

    async def _track(self, call_next: Any, context: Any, _worker: Worker) -> Any:
        """Remember which jobs this process is running (see `_sweep_zombies`)."""
        self._holding.add(context.job.id)
        try:
            return await call_next()
        finally:
            self._holding.discard(context.job.id)

    async def _supervise(self) -> None:
        failures = 0
        orphan: int | None = None
        while not self._stopping:
            if orphan is not None and not await self._reclaim(orphan):
                await self._pause_after_failure(failures)
                failures += 1
                continue
            orphan = None
            worker = self._worker = self._new_worker()
            started = time.monotonic()
            self._connected_since = started
            try:
                await worker.run()
            except Exception as error:
                log.warning("queue worker stopped: %s", error)
            self._connected_since = None
            self._collect_cut_connections()
            if self._stopping:
                break
            # Stopped without being asked: its connection to the database failed.
            orphan = worker.worker_id  # still registered if it could not say goodbye
            failures = 0 if time.monotonic() - started > 30 else failures
            await self._pause_after_failure(failures)
            failures += 1

    async def _pause_after_failure(self, failures: int) -> None:
        delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
        log.warning("queue worker restarting in %ss", delay)
        await asyncio.sleep(delay)

    async def _reclaim(self, worker_id: int) -> bool:
        """Hand back what a previous incarnation of this worker held. False: database down."""
        try:
            async with self._db.write() as conn:
                handed = await jobs.hand_back(conn, await jobs.held_by(conn, worker_id), worker_id)
                await jobs.forget_worker(conn, worker_id)
        except TRANSIENT:
            return False
        if handed:
            log.info("handed back %d run(s) interrupted by the database outage", len(handed))
        return True

    async def _wait_registered(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            worker = self._worker
            if worker is not None and worker.worker_id is not None:
                return
            if self._supervisor is not None and self._supervisor.done():
                return
            await asyncio.sleep(0.01)

    async def _beat_forever(self) -> None:
        """Heartbeats on a connection of their own, until `_stopped` is set.

        procrastinate beats too, but through the pool its jobs use to report their status: a
        busy worker's beat waits in line for a connection and can age past `stalled_after`,
        and other workers would then resume runs this one is still advancing.
        """
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while not self._stopped.is_set():
                worker = self._worker
                worker_id = worker.worker_id if worker is not None else None
                try:
                    if worker_id is not None:
                        if conn is None or conn.closed:
                            conn = await psycopg.AsyncConnection.connect(
                                self._conninfo, autocommit=True, **QUEUE_CONNECTION
                            )
                        await conn.execute(_BEAT, (worker_id,))
                except psycopg.Error as error:
                    log.debug("heartbeat failed: %s", error)
                    if conn is not None:
                        await conn.close()
                    conn = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self._options.heartbeat)
        finally:
            if conn is not None:
                await conn.close()

    async def _listen_forever(self) -> None:
        """Cancels, on a LISTEN connection of its own, until `_stopped` is set: the worker
        that advances a cancelled run aborts it at once (within milliseconds of the commit).

        A notification missed while this connection is down is harmless for correctness
        (the run's next write is refused); the model call in flight then ends on its own.
        """
        conn: psycopg.AsyncConnection[Any] | None = None
        failures = 0
        try:
            while not self._stopped.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True, **QUEUE_CONNECTION
                        )
                        await conn.execute(f"LISTEN {jobs.CANCEL_CHANNEL}")
                        failures = 0
                    # A short timeout, so that a stop is noticed at once (a stopping worker
                    # must exit within its grace period).
                    async for note in conn.notifies(timeout=0.25):
                        if self._runner.abort(note.payload):
                            log.info("run %s cancelled: aborted here", note.payload)
                except psycopg.Error as error:
                    log.debug("cancel listener: %s", error)
                    if conn is not None:
                        await conn.close()
                    conn = None
                    delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                    failures += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopped.wait(), delay)
        finally:
            if conn is not None:
                await conn.close()

    # -- sweeps: dead workers' runs, overdue pauses, runs without a job -------------------------

    async def _sweep_forever(self) -> None:
        last_orphan_sweep = 0.0
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._options.sweep_every)
                return
            orphans = time.monotonic() - last_orphan_sweep >= ORPHAN_SWEEP_EVERY
            try:
                await self._sweep_zombies()
                if await self._sweep(orphans=orphans) and orphans:
                    last_orphan_sweep = time.monotonic()
            except TRANSIENT as error:
                log.debug("sweep skipped: %s", error)
                self._note_db_error(error)
                if self._connected_since is not None:  # a blip: trust heartbeats again later
                    self._connected_since = time.monotonic()
            except Exception:
                log.exception("sweep failed")
            if self._db_errors:
                self._collect_cut_connections()

    def _note_db_error(self, error: BaseException) -> None:
        # A wait for a free connection that timed out cut no connection attempt short: nothing
        # to collect (a full collection of a busy worker's heap takes tens of milliseconds).
        if not isinstance(error, PoolTimeout):
            self._db_errors = True

    def _collect_cut_connections(self) -> None:
        """Close the sockets of connection attempts that a database error or a cancellation cut
        short. They stay open until their reference cycles are collected, and meanwhile a
        PostgreSQL server that is shutting down waits for their startup packet (up to its
        authentication_timeout, 60 s by default) before it can restart."""
        self._db_errors = False
        gc.collect()

    def _trusts_heartbeats(self) -> bool:
        # Right after an outage every worker's heartbeat is old: wait until the others had
        # the time to beat again before taking any of them for dead.
        since = self._connected_since
        return since is not None and time.monotonic() - since >= self._options.stalled_after

    async def _sweep_zombies(self) -> None:
        """Hand back the jobs the database says this worker runs but it does not."""
        worker = self._worker
        worker_id = worker.worker_id if worker is not None else None
        if worker_id is None:
            return
        async with self._db.read() as conn:
            held = await jobs.held_by(conn, worker_id)
        now = time.monotonic()
        self._suspects = {
            job_id: self._suspects.get(job_id, now)
            for job_id in held
            if job_id not in self._holding
        }
        lost = [job_id for job_id, since in self._suspects.items() if now - since >= ZOMBIE_AFTER]
        if not lost:
            return
        async with self._db.write() as conn:
            handed = await jobs.hand_back(conn, lost, worker_id)
        if handed:
            log.warning("handed back %d job(s) this worker had lost track of", len(handed))

    async def _sweep(self, *, orphans: bool) -> bool:
        """One sweep, if no other worker is sweeping right now. True if it ran."""
        overdue: list[str] = []
        async with self._db.write() as conn:
            if not await jobs.try_sweep_lock(conn):
                return False
            if self._trusts_heartbeats():
                retried = await jobs.retry_stalled(conn, self._options.stalled_after)
                if retried:
                    log.warning("resuming %d run(s) of stalled workers", len(retried))
            overdue = await jobs.overdue_pauses(conn)
            last = self._last_purge
            if last is None or time.monotonic() - last >= PURGE_EVERY:
                self._last_purge = time.monotonic()
                hours = self._runner.settings.engine.idempotency_hours
                if purged := await purge_expired(conn, hours):
                    log.info("purged %d expired idempotency key(s)", purged)
            if orphans:
                lost = await jobs.orphan_runs(conn)
                for run_id in lost:
                    await jobs.defer_advance(conn, run_id)
                if lost:
                    log.warning("queued %d runnable run(s) that had no job", len(lost))
        for run_id in overdue:
            await self._expire_pause(run_id)
        return True

    def _spawn(self, coro: Any) -> None:
        with self._db.engine_lane():
            task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

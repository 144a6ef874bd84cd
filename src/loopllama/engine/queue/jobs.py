"""The queue's SQL, run on the caller's connection: deferring jobs inside the transaction that
makes a run runnable, and the sweeps that keep every runnable run attached to a job.

Jobs are procrastinate's (`procrastinate_jobs`); we call its versioned SQL functions
(`procrastinate_defer_jobs_v1`, `procrastinate_retry_job_v2`) rather than procrastinate's Python
deferrer, because the Python side runs on its own psycopg pool and could not join a
SQLAlchemy transaction.

One job advances one run until it pauses or ends. Its `lock` ("run:<id>") keeps two workers
from advancing one run at once; its `queueing_lock` (the same string) keeps at most one wake-up
of a run waiting in the queue.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

QUEUE = "runs"
ADVANCE = "loopllama.advance_run"
EXPIRE = "loopllama.expire_pause"

_DEFER_EXPIRY = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL, "
    "CAST(:args AS jsonb), CAST(:at AS timestamptz))::procrastinate_job_to_defer_v1]))"
)
# One round trip (migrations 0003, 0009): procrastinate_defer_jobs_v1 inside an exception
# block, so a second wake-up refused by the queueing lock leaves the caller's transaction
# intact; the job's priority is its account's next turn (fairness across accounts).
_DEFER_RUN = text("SELECT loopllama_defer_run_v2(:run_id, :task, :queue)")


def run_lock(run_id: str) -> str:
    return f"run:{run_id}"


async def defer_advance(conn: AsyncConnection, run_id: str) -> None:
    """Queue "advance `run_id`" in the caller's transaction (visible to workers at commit).

    When a wake-up of this run is already waiting, no second one is queued; the waiting one is
    locked until the caller commits (a worker's fetch skips locked jobs), so it cannot start
    before the caller's writes are visible to it. If it starts in between, ours is queued
    behind it (the run's lock keeps them in order).
    """
    await conn.execute(_DEFER_RUN, {"run_id": run_id, "task": ADVANCE, "queue": QUEUE})


async def defer_expiry(conn: AsyncConnection, run_id: str, deadline: datetime) -> None:
    """Queue the check of a pause's deadline, due at `deadline`.

    Lock-less on purpose: a job scheduled in the future with the run's lock would hold back
    the run's other jobs until it is due (procrastinate #1599).
    """
    params = {"queue": QUEUE, "task": EXPIRE, "args": json.dumps({"run_id": run_id})}
    await conn.execute(_DEFER_EXPIRY, {**params, "at": deadline})


# -- fetching ------------------------------------------------------------------------------------

# Up to `limit` jobs in one round trip: procrastinate's own fetch (the first waiting job whose
# lock is free, in priority order, marked `doing` for the worker), called again while it finds
# one. The function is volatile, so each call sees the jobs the previous ones took: a run's
# second wake-up waits behind its first, as with one fetch at a time.
FETCH_MANY = """
WITH RECURSIVE fetched(n, job) AS (
    SELECT 1, procrastinate_fetch_job_v2(%(queues)s::varchar[], %(worker_id)s)
  UNION ALL
    SELECT n + 1, procrastinate_fetch_job_v2(%(queues)s::varchar[], %(worker_id)s)
    FROM fetched WHERE (job).id IS NOT NULL AND n < %(limit)s
)
SELECT (job).id, (job).status, (job).task_name, (job).priority, (job).lock,
       (job).queueing_lock, (job).args, (job).scheduled_at, (job).queue_name, (job).attempts,
       (job).worker_id
FROM fetched WHERE (job).id IS NOT NULL ORDER BY n
"""


# -- sweeps --------------------------------------------------------------------------------------

_STALLED = text(
    "SELECT job.id, job.worker_id FROM procrastinate_jobs job "
    "LEFT JOIN procrastinate_workers w ON w.id = job.worker_id "
    "WHERE job.status = 'doing' AND job.queue_name = :queue "
    "AND (job.worker_id IS NULL OR w.id IS NULL "
    "     OR w.last_heartbeat < now() - make_interval(secs => :seconds))"
)
# Compare-and-retry: hand the job back only if it is still held by the worker we found dead
# (row-locked, so a concurrent fetch or a second sweeper cannot slip in between) and, when
# `seconds` is given, that worker has not sent a heartbeat since.
_RETRY_IF_STILL_HELD = text(
    "WITH target AS ("
    "  SELECT id FROM procrastinate_jobs job"
    "  WHERE id = :job_id AND status = 'doing' AND worker_id IS NOT DISTINCT FROM :worker_id"
    "  AND (CAST(:seconds AS float8) IS NULL OR NOT EXISTS ("
    "       SELECT 1 FROM procrastinate_workers w WHERE w.id = job.worker_id"
    "       AND w.last_heartbeat >= now() - make_interval(secs => CAST(:seconds AS float8))))"
    "  FOR UPDATE"
    ") SELECT procrastinate_retry_job_v2(id, now(), NULL, NULL, NULL) FROM target"
)
_HELD_BY = text(
    "SELECT id FROM procrastinate_jobs WHERE status = 'doing' AND worker_id = :worker_id"
)
_FORGET_WORKER = text("DELETE FROM procrastinate_workers WHERE id = :worker_id")
# Runnable runs that no job will advance (none waiting, none running). Enqueue-in-transaction
# makes this rare (a job aborted by hand, a database restored from a backup), so the sweep
# that looks for them runs seldom.
_ORPHANS = text(
    "SELECT r.id FROM runs r WHERE r.status IN ('queued', 'running') "
    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.queueing_lock = 'run:' || r.id "
    "                AND j.status = 'todo') "
    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.lock = 'run:' || r.id "
    "                AND j.status = 'doing') "
    "LIMIT :limit"
)
_OVERDUE = text(
    "SELECT id FROM runs WHERE status = 'waiting_input' AND pause_deadline < now() "
    "ORDER BY pause_deadline LIMIT :limit"
)


async def retry_stalled(conn: AsyncConnection, stalled_after: float) -> list[int]:
    """Hand back the jobs of workers that stopped heart-beating; returns their ids."""
    found = (await conn.execute(_STALLED, {"queue": QUEUE, "seconds": stalled_after})).all()
    retried = []
    for job_id, worker_id in found:
        params = {"job_id": job_id, "worker_id": worker_id, "seconds": stalled_after}
        if (await conn.execute(_RETRY_IF_STILL_HELD, params)).first() is not None:
            retried.append(job_id)
    return retried


async def held_by(conn: AsyncConnection, worker_id: int) -> list[int]:
    """The jobs the database says `worker_id` is running."""
    return list((await conn.execute(_HELD_BY, {"worker_id": worker_id})).scalars())


async def hand_back(conn: AsyncConnection, job_ids: list[int], worker_id: int) -> list[int]:
    """Hand back these jobs of `worker_id` (a registration of this very process, which knows
    it does not run them); returns those it handed back."""
    retried = []
    for job_id in job_ids:
        params = {"job_id": job_id, "worker_id": worker_id, "seconds": None}
        if (await conn.execute(_RETRY_IF_STILL_HELD, params)).first() is not None:
            retried.append(job_id)
    return retried


async def forget_worker(conn: AsyncConnection, worker_id: int) -> None:
    await conn.execute(_FORGET_WORKER, {"worker_id": worker_id})


async def orphan_runs(conn: AsyncConnection, limit: int = 1000) -> list[str]:
    return list((await conn.execute(_ORPHANS, {"limit": limit})).scalars())


async def overdue_pauses(conn: AsyncConnection, limit: int = 1000) -> list[str]:
    return list((await conn.execute(_OVERDUE, {"limit": limit})).scalars())


async def try_sweep_lock(conn: AsyncConnection) -> bool:
    """One sweeper at a time across all workers (released when the transaction ends)."""
    return bool(await conn.scalar(text("SELECT pg_try_advisory_xact_lock(72178)")))


# Run ids of cancelled runs, sent to every worker; the one advancing the run stops it.
CANCEL_CHANNEL = "loopllama_cancel"


async def cancel_run_jobs(conn: AsyncConnection, run_id: str) -> None:
    """In the transaction that cancels the run: drop its waiting wake-up, and tell the worker
    that advances it (if any) to stop, at commit (NOTIFY is transactional).

    A NOTIFY rather than procrastinate's abort: its workers look for abort requests by
    polling (every 2 s here), and an aborted job would be handed back by our retry strategy.
    """
    await conn.execute(
        text(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE queueing_lock = :lock AND status = 'todo'"
        ),
        {"lock": run_lock(run_id)},
    )
    await conn.execute(
        text("SELECT pg_notify(:channel, :run_id)"),
        {"channel": CANCEL_CHANNEL, "run_id": run_id},
    )

"""The outbox: a delivery row for every (event, subscribed endpoint), in the event's transaction.

engine/events.py calls `record` right after inserting events, on the same connection, so an
event and its deliveries commit together or not at all: a crash between the commit and the
send loses nothing (the rows wait, pending, for a sender). Then the senders are told:

- PostgreSQL: one procrastinate job per delivery, deferred by the same statement (workers hear
  of them at commit through procrastinate's NOTIFY);
- SQLite: the connection is flagged, and store/db.py wakes the embedded scheduler after the
  commit.

One set-based statement per write, whatever the number of endpoints: the database joins the
new events to the account's enabled endpoints that subscribe to their type (and workflow), and
makes the ids itself. An account without endpoints pays one indexed probe that inserts nothing;
with 100 endpoints, no Python loop runs per delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.store.tables import Timestamp

QUEUE = "webhooks"  # procrastinate's queue of webhook attempts (webhooks/queue.py)
TASK = "loopllama.deliver_webhook"

_COLUMNS = (
    "INSERT INTO webhook_deliveries (id, endpoint_id, run_id, event_id, event_type, status, "
    "attempts, next_attempt_at, one_shot, created_at) "
)
_MATCH = (
    "FROM run_events ev JOIN runs r ON r.id = ev.run_id "
    "JOIN webhook_endpoints e ON e.account_id = r.account_id AND e.status = 'enabled' "
    "AND (e.workflow_id IS NULL OR e.workflow_id = r.workflow_id) "
    "AND {subscribed} "
    "WHERE ev.run_id = :run AND ev.id BETWEEN :first AND :last"
)
# Ids of 25 characters like the house's: 'c', the time in milliseconds (11 hex digits), then
# 12 random hex digits. Time first, so a write's rows land at the end of the primary key's
# B-tree instead of all over it (random keys dirtied a page per row: 5x the cost).
_SQLITE = text(
    _COLUMNS
    + "SELECT printf('c%011x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) "
    "|| lower(hex(randomblob(6))), e.id, ev.run_id, ev.id, ev.type, 'pending', "
    "0, :now, 0, :now "
    + _MATCH.format(
        subscribed="EXISTS (SELECT 1 FROM json_each(e.events) t WHERE t.value = ev.type)"
    )
).bindparams(bindparam("now", type_=Timestamp))
_POSTGRES_INSERT = (
    _COLUMNS
    + "SELECT 'c' || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 11, "
    "'0') || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12), e.id, "
    "ev.run_id, ev.id, ev.type, 'pending', 0, :now, false, :now "
)
_POSTGRES_DEFER = (
    "SELECT procrastinate_defer_jobs_v1(ARRAY("
    "  SELECT ROW(:queue, :task, 0, NULL, NULL, jsonb_build_object('delivery_id', ins.id),"
    "             NULL)::procrastinate_job_to_defer_v1 FROM ins)) "
    "WHERE EXISTS (SELECT 1 FROM ins)"
)
_POSTGRES = text(
    "WITH ins AS ("
    + _POSTGRES_INSERT
    + _MATCH.format(subscribed="e.events @> jsonb_build_array(ev.type)")
    + " RETURNING id) "
    + _POSTGRES_DEFER
).bindparams(bindparam("now", type_=Timestamp))

# PostgreSQL, for engine/events.py: the deliveries of the rows a data-modifying CTE named `ev`
# inserts into run_events (RETURNING run_id, id, type) in the same statement: one round trip
# for the events and their outbox. (A statement does not see its own CTE's rows in the table,
# hence `ev` rather than run_events.) Parameters: now, queue, task.
POSTGRES_AFTER_EVENTS = (
    ", ins AS (" + _POSTGRES_INSERT + "FROM ev JOIN runs r ON r.id = ev.run_id "
    "JOIN webhook_endpoints e ON e.account_id = r.account_id AND e.status = 'enabled' "
    "AND (e.workflow_id IS NULL OR e.workflow_id = r.workflow_id) "
    "AND e.events @> jsonb_build_array(ev.type) "
    "RETURNING id) " + _POSTGRES_DEFER
)
POSTGRES_PARAMS = {"queue": QUEUE, "task": TASK}


async def record(
    conn: AsyncConnection,
    run_id: str,
    first_id: int,
    events: Sequence[tuple[str, Any]],
    now: datetime,
    *,
    hooked: bool | None = None,
) -> None:
    """Insert the deliveries of the events `first_id` .. `first_id + len(events) - 1`.

    `hooked` False: this transaction already found that the run's account has no enabled
    endpoint (store/statements.HOOKED). On SQLite nothing is then to be written: the write
    transaction is serializable, so no endpoint can appear before it commits. On PostgreSQL
    (read committed) one may have been committed since, so the statement runs whatever it says.
    """
    params = {"run": run_id, "first": first_id, "last": first_id + len(events) - 1, "now": now}
    flag = getattr(conn, "outbox_written", None)
    if flag is not None:  # SQLite: wake the scheduler after commit, if anything was written
        if hooked is False:
            return
        if (await conn.execute(_SQLITE, params)).rowcount:
            flag()
        return
    await conn.execute(_POSTGRES, {**params, "queue": QUEUE, "task": TASK})


async def tell_senders(conn: AsyncConnection, delivery_ids: list[str]) -> None:
    """Have these deliveries attempted as soon as the caller's transaction commits."""
    flag = getattr(conn, "outbox_written", None)  # SQLite: wake the scheduler after commit
    if flag is not None:
        flag()
        return
    from loopllama.webhooks.queue import defer_attempts  # PostgreSQL only: procrastinate

    await defer_attempts(conn, delivery_ids)

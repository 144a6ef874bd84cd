"""The outbox: a delivery row for every (event, subscribed endpoint), in the event's transaction.

engine/events.py calls `record` right after inserting events, on the same connection, so an
event and its deliveries commit together or not at all: a crash between the commit and the
send loses nothing (the rows wait, pending, for a sender). Then the senders are told:

- PostgreSQL: one procrastinate job per delivery, deferred in the same transaction (workers
  hear of them at commit through procrastinate's NOTIFY);
- SQLite: the connection is flagged, and store/db.py wakes the embedded scheduler after the
  commit.

The common case, an account without endpoints, costs one indexed read per write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import new_id
from loopllama.store.tables import runs, webhook_deliveries, webhook_endpoints

E = webhook_endpoints.c

_SUBSCRIBERS = (
    select(E.id, E.events, E.workflow_id, runs.c.workflow_id.label("run_workflow"))
    .select_from(runs)
    .join(webhook_endpoints, E.account_id == runs.c.account_id)
    .where(runs.c.id == bindparam("b_run"), E.status == "enabled")
)
_INSERT = webhook_deliveries.insert()


async def record(
    conn: AsyncConnection,
    run_id: str,
    first_id: int,
    events: Sequence[tuple[str, Any]],
    now: Any,
) -> int:
    """Insert the deliveries of `events` (ids `first_id`, ...); returns how many."""
    subscribers = (await conn.execute(_SUBSCRIBERS, {"b_run": run_id})).all()
    if not subscribers:
        return 0
    rows = []
    for endpoint_id, types, only_workflow, run_workflow in subscribers:
        if only_workflow is not None and only_workflow != run_workflow:
            continue
        for offset, (kind, _data) in enumerate(events):
            if kind in types:
                rows.append(_row(endpoint_id, run_id, first_id + offset, kind, now))
    if not rows:
        return 0
    await conn.execute(_INSERT, rows)
    await tell_senders(conn, [row["id"] for row in rows])
    return len(rows)


async def tell_senders(conn: AsyncConnection, delivery_ids: list[str]) -> None:
    """Have these deliveries attempted as soon as the caller's transaction commits."""
    flag = getattr(conn, "outbox_written", None)  # SQLite: wake the scheduler after commit
    if flag is not None:
        flag()
        return
    from loopllama.webhooks.queue import defer_attempts  # PostgreSQL only: procrastinate

    await defer_attempts(conn, delivery_ids)


def _row(endpoint_id: str, run_id: str, event_id: int, kind: str, now: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "endpoint_id": endpoint_id,
        "run_id": run_id,
        "event_id": event_id,
        "event_type": kind,
        "status": "pending",
        "attempts": 0,
        "last_status_code": None,
        "last_error": None,
        "next_attempt_at": now,
        "claimed_until": None,
        "one_shot": False,
        "created_at": now,
        "delivered_at": None,
    }

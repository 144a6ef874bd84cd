"""The run event log: ids reserved on the run's row, rows inserted, commit announced.

Only engine/transitions.py calls this module, inside the transaction of the state change an
event reports, so the log and the run never disagree. Ids are reserved by bumping
`runs.last_event_id` in an UPDATE of the run (the run's row lock orders two writers of the same
run; the (run_id, id) primary key refuses a repeat), and the UPDATE is fenced like every engine
write: a process that lost the run reserves nothing and writes nothing.

The hot transitions fold the reservation into the fenced UPDATE they make anyway
(`last_event_id = last_event_id + :b_events ... RETURNING last_event_id`) and call `write`;
the others call `append`, which makes its own reservation. Announcing the commit to live
streams (engine/notify.py) is the database's job on PostgreSQL (a trigger sends NOTIFY at
commit) and `announce` below on SQLite (store/db.py calls the hub after the commit).
`write` also hands the events to the webhook outbox (webhooks/outbox.py), which records their
deliveries in the same transaction.

Event types (EXTENSIONS part 5) and their `data`:

    run.queued run.started run.waiting_input run.completed run.failed run.cancelled
                                      the run object (no steps)
    run.resumed                       {"action", "run": the run object}
    step.started step.completed step.failed
                                      the step object
    tool_call.updated                 {"step_id", "order", "tool_call": the tool call object}
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import utcnow
from loopllama.schemas.runs import run_public, step_public, tool_call_public
from loopllama.store.tables import run_events, runs
from loopllama.webhooks import outbox

Event = tuple[str, dict[str, Any]]  # (type, data)

TERMINAL_TYPES = frozenset({"run.completed", "run.failed", "run.cancelled"})

_INSERT = run_events.insert()
_RESERVE = (
    update(runs)
    .where(runs.c.id == bindparam("b_run"))
    .values(last_event_id=runs.c.last_event_id + bindparam("b_events"))
    .returning(runs.c.last_event_id)
)
_RESERVE_OWNED = _RESERVE.where(runs.c.attempt == bindparam("b_attempt"))


async def append(
    conn: AsyncConnection, run_id: str, events: Sequence[Event], *, attempt: int | None = None
) -> int | None:
    """Append `events` (in order) to the run's log; returns the last id written.

    `attempt`: write only while that attempt owns the run; None when it does not (the caller
    raises `LostOwnership`). Without it the write is unconditional: for decisions that are not
    an engine's (a respond, a cancel), which their own conditional UPDATE arbitrates.
    """
    params: dict[str, Any] = {"b_run": run_id, "b_events": len(events)}
    if attempt is None:
        last = (await conn.execute(_RESERVE, params)).scalar()
    else:
        params["b_attempt"] = attempt
        last = (await conn.execute(_RESERVE_OWNED, params)).scalar()
    if last is None:
        return None
    await write(conn, run_id, last, events)
    return last


async def write(
    conn: AsyncConnection,
    run_id: str,
    last_id: int,
    events: Sequence[Event],
    *,
    hooked: bool | None = None,
) -> None:
    """Insert events whose ids the caller reserved: `last_id - len(events) + 1 .. last_id`.

    `hooked`: whether the UPDATE that reserved the ids found an enabled webhook endpoint for
    the run's account (store/statements.HOOKED); None when it did not look."""
    now = utcnow()
    first = last_id - len(events) + 1
    if getattr(conn, "outbox_written", None) is None:  # PostgreSQL: one round trip for both
        params: dict[str, Any] = {"run": run_id, "now": now, **outbox.POSTGRES_PARAMS}
        for i, (kind, data) in enumerate(events):
            params[f"id{i}"], params[f"type{i}"], params[f"data{i}"] = first + i, kind, data
        await conn.execute(_postgres_insert(len(events)), params)
        return  # the NOTIFY trigger announces the events at commit
    rows = [
        {"run_id": run_id, "id": first + i, "type": kind, "data": data, "created_at": now}
        for i, (kind, data) in enumerate(events)
    ]
    await conn.execute(_INSERT, rows)
    await outbox.record(conn, run_id, first, events, now, hooked=hooked)  # same transaction
    announce = getattr(conn, "announce", None)  # SQLite's in-process hub; PostgreSQL: trigger
    if announce is not None:
        announce(run_id, last_id)


@functools.cache
def _postgres_insert(count: int) -> TextClause:
    """`count` events and their webhook deliveries (webhooks/outbox.py) in one statement."""
    values = ", ".join(f"(:run, :id{i}, :type{i}, :data{i}, :now)" for i in range(count))
    return text(
        "WITH ev AS (INSERT INTO run_events (run_id, id, type, data, created_at) "
        f"VALUES {values} RETURNING run_id, id, type)" + outbox.POSTGRES_AFTER_EVENTS
    ).bindparams(
        bindparam("now", type_=run_events.c.created_at.type),
        *(bindparam(f"data{i}", type_=run_events.c.data.type) for i in range(count)),
    )


# -- data of each type -------------------------------------------------------------------------


def run_data(row: Any) -> dict[str, Any]:
    return run_public(row if isinstance(row, dict) else dict(row._mapping))


def step_data(step: dict[str, Any], calls: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return step_public(step, list(calls))


def tool_call_data(step_id: str, order: int, call: dict[str, Any]) -> dict[str, Any]:
    return {"step_id": step_id, "order": order, "tool_call": tool_call_public(call)}

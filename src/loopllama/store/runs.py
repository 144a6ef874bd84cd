"""Run, step and tool-call reads. Writes that change run state live in engine/transitions.py."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.store.statements import (
    PUBLIC_STEPS_OF_RUN,
    RUN_OF_ACCOUNT,
    STEPS_OF_RUN,
    TOOL_CALLS_OF_RUN,
)
from loopllama.store.tables import run_events, runs, tool_calls

# Every run column but the snapshot (which holds tool secrets and can be large).
_RUN_COLUMNS = [c for c in runs.c if c.name != "snapshot"]


async def get_run(conn: AsyncConnection, account_id: str, run_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(RUN_OF_ACCOUNT, {"b_run": run_id, "b_account": account_id})).first()
    return dict(row._mapping) if row else None


async def get_run_for_engine(conn: AsyncConnection, run_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
    return dict(row._mapping) if row else None


async def list_runs(
    conn: AsyncConnection,
    account_id: str,
    *,
    workflow_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    after: str | None = None,
    only: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """A page of the account's runs, newest first: keyset pagination on (created_at, id),
    so every page is one range scan of an index (tables.py) however deep it is. `only`: the
    runs of just these workflows (a workflow-limited key's).

    `after` is a run id; its position is looked up in the same statement (one round trip).
    A run that is not the account's matches nothing: the page is empty (`run_position` tells
    the two cases apart)."""
    query = select(*_RUN_COLUMNS).where(runs.c.account_id == account_id)
    if only is not None:
        query = query.where(runs.c.workflow_id.in_(sorted(only)))
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    params: dict[str, Any] = {}
    if after is not None:
        query = query.where(_AFTER)
        params = {"after_run": after, "after_account": account_id}
    rows = await conn.execute(
        query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit), params
    )
    return [dict(row._mapping) for row in rows]


# A row-value comparison with the cursor run's (created_at, id): PostgreSQL turns it into the
# index range's start (SQLite 3.15+ reads it too).
_AFTER = text(
    "(runs.created_at, runs.id) < (SELECT cursor.created_at, cursor.id FROM runs AS cursor "
    "WHERE cursor.id = :after_run AND cursor.account_id = :after_account)"
)


async def run_position(
    conn: AsyncConnection, account_id: str, run_id: str
) -> tuple[datetime, str] | None:
    """Where a run stands in the lists (an `after` cursor); None if not the account's."""
    row = (
        await conn.execute(
            select(runs.c.created_at, runs.c.id).where(
                runs.c.id == run_id, runs.c.account_id == account_id
            )
        )
    ).first()
    return (row.created_at, row.id) if row else None


async def get_snapshot(conn: AsyncConnection, run_id: str) -> dict[str, Any]:
    """The definition a run executes (kept off `get_run`: it holds tool secrets)."""
    return await conn.scalar(select(runs.c.snapshot).where(runs.c.id == run_id))


async def get_steps(conn: AsyncConnection, run_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(STEPS_OF_RUN, {"b_run": run_id})
    return [dict(row._mapping) for row in rows]


async def get_public_steps(conn: AsyncConnection, run_id: str) -> list[dict[str, Any]]:
    """The steps as the API shows them: no transcripts, and `has_tool_calls` per step."""
    rows = await conn.execute(PUBLIC_STEPS_OF_RUN, {"b_run": run_id})
    return [dict(row._mapping) for row in rows]


async def get_tool_calls(conn: AsyncConnection, run_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(TOOL_CALLS_OF_RUN, {"b_run": run_id})
    return [dict(row._mapping) for row in rows]


async def get_step_tool_calls(conn: AsyncConnection, step_id: str) -> dict[int, dict[str, Any]]:
    rows = await conn.execute(select(tool_calls).where(tool_calls.c.step_id == step_id))
    return {row.seq: dict(row._mapping) for row in rows}


async def unfinished_run_ids(conn: AsyncConnection) -> list[str]:
    """Runs a dead process may have left behind: queued or running."""
    rows = await conn.execute(
        select(runs.c.id)
        .where(runs.c.status.in_(("queued", "running")))
        .order_by(runs.c.created_at)
    )
    return [row.id for row in rows]


async def pause_deadlines(conn: AsyncConnection) -> list[tuple[str, datetime]]:
    """Paused runs that give up waiting at some time."""
    rows = await conn.execute(
        select(runs.c.id, runs.c.pause_deadline).where(
            runs.c.status == "waiting_input", runs.c.pause_deadline.is_not(None)
        )
    )
    return [(row.id, row.pause_deadline) for row in rows]


async def get_events(
    conn: AsyncConnection, run_id: str, after: int, limit: int, upto: int | None = None
) -> list[Any]:
    """The run's events with `after < id <= upto`, oldest first, at most `limit` of them."""
    query = select(run_events).where(run_events.c.run_id == run_id, run_events.c.id > after)
    if upto is not None:
        query = query.where(run_events.c.id <= upto)
    rows = await conn.execute(query.order_by(run_events.c.id).limit(limit))
    return list(rows)


async def account_of_run(conn: AsyncConnection, run_id: str) -> str | None:
    """The account that owns `run_id` (fair scheduling needs it before the run is claimed)."""
    return await conn.scalar(select(runs.c.account_id).where(runs.c.id == run_id))

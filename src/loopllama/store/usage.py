"""Usage: what an account's runs used, per UTC day, workflow and model, summed over the
recorded steps at query time (no counters that could drift from the steps).

A run counts on the day it was triggered (`runs.created_at`), so a day's figures are final
once its runs have finished. Steps copied by a retry or a fork (`forked`) are left out: their
model calls were made, and counted, by the source run.

The range is one scan of `ix_runs_account_created` (account, created_at); each run's steps are
one probe of `uq_steps_run_order` (run_id, order).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, cast, false, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.store.tables import runs, steps


async def usage_rows(
    conn: AsyncConnection,
    account_id: str,
    start: date,
    end: date,
    *,
    sqlite: bool,
    only: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows `{date, workflow_id, model, runs, tokens_in, tokens_out, cost_usd}` for the UTC
    days `start`..`end` (inclusive), oldest day first. `only`: just these workflows (a
    workflow-limited key's)."""
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    if sqlite:  # SQLite stores UTC text: its first 10 characters are the day
        day = func.substr(runs.c.created_at, 1, 10)
    else:
        day = cast(func.timezone("UTC", runs.c.created_at), Date)
    day = day.label("day")
    query = (
        select(
            day,
            runs.c.workflow_id,
            steps.c.model,
            func.count(func.distinct(runs.c.id)).label("runs"),
            func.sum(steps.c.tokens_in).label("tokens_in"),
            func.sum(steps.c.tokens_out).label("tokens_out"),
            # SUM over nothing but nulls is null: a model with no known price stays unknown.
            func.sum(steps.c.cost_usd).label("cost_usd"),
        )
        .select_from(runs.join(steps, steps.c.run_id == runs.c.id))
        .where(
            runs.c.account_id == account_id,
            runs.c.created_at >= since,
            runs.c.created_at < until,
            steps.c.forked == false(),
        )
        .group_by(day, runs.c.workflow_id, steps.c.model)
        .order_by(day, runs.c.workflow_id, steps.c.model)
    )
    if only is not None:
        query = query.where(runs.c.workflow_id.in_(sorted(only)))
    return [
        {
            "date": str(row.day)[:10],
            "workflow_id": row.workflow_id,
            "model": row.model,
            "runs": int(row.runs),
            "tokens_in": int(row.tokens_in or 0),
            "tokens_out": int(row.tokens_out or 0),
            "cost_usd": None if row.cost_usd is None else float(row.cost_usd),
        }
        for row in await conn.execute(query)
    ]

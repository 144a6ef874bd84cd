"""Workflow queries, always scoped to the owning account; deleted workflows are invisible.

Every definition a workflow has had is a `workflow_versions` row: `insert_workflow` writes
version 1 and `update_workflow` a new version whenever a field that a run executes changes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import new_id, utcnow
from loopllama.store.statements import WORKFLOW_OF_ACCOUNT
from loopllama.store.tables import workflow_versions, workflows

# What a run executes: a change to any of these makes a new version; the rest (name,
# description, status, locked) is bookkeeping.
DEFINITION_FIELDS = (
    "model",
    "crew",
    "human_in_the_loop",
    "tools",
    "max_run_seconds",
    "max_cost_usd",
    "max_tokens",
)


def definition_of(workflow: dict[str, Any]) -> dict[str, Any]:
    return {field: workflow.get(field) for field in DEFINITION_FIELDS}


async def insert_workflow(
    conn: AsyncConnection, account_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    now = utcnow()
    row = {
        "id": new_id(),
        "account_id": account_id,
        "status": "active",
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
        "max_run_seconds": None,
        "max_cost_usd": None,
        "max_tokens": None,
        "version": 1,
        "locked": False,
        **values,
    }
    await conn.execute(workflows.insert().values(**row))
    await _insert_version(conn, row["id"], 1, definition_of(row))
    return row


async def get_workflow(
    conn: AsyncConnection, account_id: str, workflow_id: str
) -> dict[str, Any] | None:
    parameters = {"b_workflow": workflow_id, "b_account": account_id}
    row = (await conn.execute(WORKFLOW_OF_ACCOUNT, parameters)).first()
    return dict(row._mapping) if row else None


async def list_workflows(
    conn: AsyncConnection,
    account_id: str,
    *,
    limit: int | None = None,
    after: tuple[Any, str] | None = None,
    only: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Most recently updated first; `after` is the (updated_at, id) of the last one seen;
    `only`: just these ids (a workflow-limited key's)."""
    query = (
        select(workflows)
        .where(workflows.c.account_id == account_id, workflows.c.deleted_at.is_(None))
        .order_by(workflows.c.updated_at.desc(), workflows.c.id.desc())
    )
    if after is not None:
        updated_at, workflow_id = after
        query = query.where(
            or_(
                workflows.c.updated_at < updated_at,
                and_(workflows.c.updated_at == updated_at, workflows.c.id < workflow_id),
            )
        )
    if only is not None:
        query = query.where(workflows.c.id.in_(sorted(only)))
    if limit is not None:
        query = query.limit(limit)
    rows = await conn.execute(query)
    return [dict(row._mapping) for row in rows]


async def list_position(
    conn: AsyncConnection, account_id: str, workflow_id: str
) -> tuple[Any, str] | None:
    """Where a workflow of the account sits in the list: its (updated_at, id). A workflow
    deleted since a client saw it still marks its place."""
    row = (
        await conn.execute(
            select(workflows.c.updated_at, workflows.c.id).where(
                workflows.c.account_id == account_id, workflows.c.id == workflow_id
            )
        )
    ).first()
    return (row.updated_at, row.id) if row else None


async def existing_workflow_ids(
    conn: AsyncConnection, account_id: str, ids: Collection[str]
) -> set[str]:
    """Which of `ids` name live workflows of the account."""
    rows = await conn.execute(
        select(workflows.c.id).where(
            workflows.c.account_id == account_id,
            workflows.c.deleted_at.is_(None),
            workflows.c.id.in_(sorted(ids)),
        )
    )
    return {row.id for row in rows}


async def update_workflow(
    conn: AsyncConnection, workflow: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """Apply `values` and move `updated_at`, adding a version when the definition changes;
    returns the changed columns."""
    changes = {**values, "updated_at": utcnow()}
    if any(workflow[field] != values[field] for field in DEFINITION_FIELDS if field in values):
        changes["version"] = workflow["version"] + 1
        definition = definition_of({**workflow, **values})
        await _insert_version(conn, workflow["id"], changes["version"], definition)
    await conn.execute(update(workflows).where(workflows.c.id == workflow["id"]).values(**changes))
    return changes


async def add_version(conn: AsyncConnection, workflow: dict[str, Any]) -> dict[str, Any]:
    """Record the workflow's current definition as a new version (a restore of the current
    one); returns the changed columns."""
    changes = {"version": workflow["version"] + 1, "updated_at": utcnow()}
    await _insert_version(conn, workflow["id"], changes["version"], definition_of(workflow))
    await conn.execute(update(workflows).where(workflows.c.id == workflow["id"]).values(**changes))
    return changes


async def _insert_version(
    conn: AsyncConnection, workflow_id: str, version: int, definition: dict[str, Any]
) -> None:
    await conn.execute(
        workflow_versions.insert().values(
            workflow_id=workflow_id, version=version, definition=definition, created_at=utcnow()
        )
    )


async def list_versions(conn: AsyncConnection, workflow_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(workflow_versions)
        .where(workflow_versions.c.workflow_id == workflow_id)
        .order_by(workflow_versions.c.version.desc())
    )
    return [dict(row._mapping) for row in rows]


async def get_version(
    conn: AsyncConnection, workflow_id: str, version: int
) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(workflow_versions).where(
                workflow_versions.c.workflow_id == workflow_id,
                workflow_versions.c.version == version,
            )
        )
    ).first()
    return dict(row._mapping) if row else None


async def delete_workflow(conn: AsyncConnection, workflow_id: str) -> None:
    await conn.execute(
        update(workflows).where(workflows.c.id == workflow_id).values(deleted_at=utcnow())
    )

"""Idempotency-Key of run triggers: claim a key in the trigger's transaction, purge old ones.

The unique constraint on (account, key) is the arbiter, never a read-then-write: the first
transaction to insert the key owns it; a concurrent one with the same key waits on the index
entry (PostgreSQL) or on the write lock (SQLite) and then finds the key taken, with the run it
recorded. A key older than the retention period is treated as unused (and taken over by a
conditional update) until the periodic purge deletes it.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import utcnow
from loopllama.store.tables import idempotency_keys as keys

# ON CONFLICT DO NOTHING ... RETURNING reads the same on PostgreSQL and SQLite (3.35+); a row
# back means the key is ours (rowcount is not reliable for this statement on every driver).
_CLAIM = (
    insert(keys)
    .on_conflict_do_nothing(index_elements=["account_id", "key"])
    .returning(keys.c.run_id)
)


def request_hash(workflow_id: str, body: Any) -> str:
    """What "the same request" means: the same workflow and the same JSON body (key order
    and whitespace aside)."""
    canonical = orjson.dumps([workflow_id, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def claim(
    conn: AsyncConnection,
    account_id: str,
    key: str,
    fingerprint: str,
    run_id: str,
    retention_hours: int,
) -> dict[str, Any] | None:
    """Record `key` for `run_id` in the caller's transaction. None: the key is ours (go on
    and create the run); else the live row that holds it (`request_hash`, `run_id`)."""
    now = utcnow()
    row = {
        "account_id": account_id,
        "key": key,
        "request_hash": fingerprint,
        "run_id": run_id,
        "created_at": now,
    }
    if (await conn.execute(_CLAIM, row)).first() is not None:
        return None
    expired = await conn.execute(
        update(keys)
        .where(
            keys.c.account_id == account_id,
            keys.c.key == key,
            keys.c.created_at < now - timedelta(hours=retention_hours),
        )
        .values(request_hash=fingerprint, run_id=run_id, created_at=now)
    )
    if expired.rowcount == 1:
        return None
    held = (
        await conn.execute(
            select(keys.c.request_hash, keys.c.run_id).where(
                keys.c.account_id == account_id, keys.c.key == key
            )
        )
    ).first()
    return dict(held._mapping)


async def purge_expired(conn: AsyncConnection, retention_hours: int) -> int:
    """Delete the keys older than the retention period; returns how many."""
    cutoff = utcnow() - timedelta(hours=retention_hours)
    result = await conn.execute(delete(keys).where(keys.c.created_at < cutoff))
    return result.rowcount or 0

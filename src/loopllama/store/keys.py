"""Accounts and API keys: keys are shown once and stored only as a SHA-256 hash.

A key row carries its grant (permissions.py): scope, workflow limit, expiry. The lookup of
every request is one pre-built statement (statements.KEY_LOOKUP) that also refuses revoked and
expired keys; `last_used_at` is written apart from it, at most once a minute (api/auth.py).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import new_id, utcnow
from loopllama.permissions import Grant
from loopllama.store.statements import KEY_LOOKUP, KEY_TOUCH
from loopllama.store.tables import accounts, api_keys

KEY_PREFIX = "ll_live_"

# What a key looks like on the wire and in `keys list` (never the key or its hash).
_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.account_id,
    api_keys.c.label,
    api_keys.c.scope,
    api_keys.c.workflow_ids,
    api_keys.c.hint,
    api_keys.c.created_at,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
    api_keys.c.rate_limit,
)


def generate_key() -> str:
    """`ll_live_` and 32 random bytes, base64url without padding (43 characters)."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def account_id_of(conn: AsyncConnection, name: str, *, create: bool) -> str | None:
    """The id of the account called `name`; created when `create` (else None if missing)."""
    account_id = await conn.scalar(select(accounts.c.id).where(accounts.c.name == name))
    if account_id is None and create:
        account_id = new_id()
        await conn.execute(accounts.insert().values(id=account_id, name=name, created_at=utcnow()))
    return account_id


async def create_key(
    conn: AsyncConnection,
    account: str,
    label: str | None,
    grant: Grant | None = None,
    *,
    rate_limit: str | None = None,
) -> tuple[str, str]:
    """Create a key for the account named `account` (created if new); by default an admin key
    with no limit and no expiry. `rate_limit` ("5/second"): the key's own request limit
    instead of the server's. Returns (key id, the key itself)."""
    account_id = await account_id_of(conn, account, create=True)
    assert account_id is not None
    row, key = await insert_key(conn, account_id, label, grant or Grant(), rate_limit=rate_limit)
    return row["id"], key


async def insert_key(
    conn: AsyncConnection,
    account_id: str,
    label: str | None,
    grant: Grant,
    *,
    rate_limit: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Create a key for an existing account. Returns (its row, the key itself)."""
    key = generate_key()
    row = {
        "id": new_id(),
        "account_id": account_id,
        "label": label,
        "scope": grant.scope,
        "workflow_ids": None if grant.workflow_ids is None else sorted(grant.workflow_ids),
        "hint": key[: len(KEY_PREFIX) + 4] + "…",
        "created_at": utcnow(),
        "expires_at": grant.expires_at,
        "last_used_at": None,
        "revoked_at": None,
        "rate_limit": rate_limit,
    }
    await conn.execute(api_keys.insert().values(key_hash=hash_key(key), **row))
    return row, key


async def list_keys(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every key of every account, oldest first, with the account's name (the CLI)."""
    query = (
        select(*_KEY_COLUMNS, accounts.c.name.label("account"))
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .order_by(api_keys.c.created_at)
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


async def list_account_keys(conn: AsyncConnection, account_id: str) -> list[dict[str, Any]]:
    """The keys of one account, newest first (the API)."""
    query = (
        select(*_KEY_COLUMNS)
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


async def get_account_key(
    conn: AsyncConnection, account_id: str, key_id: str
) -> dict[str, Any] | None:
    query = select(*_KEY_COLUMNS).where(
        api_keys.c.id == key_id, api_keys.c.account_id == account_id
    )
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row else None


async def revoke_key(conn: AsyncConnection, key_id: str) -> bool:
    """Revoke a key; False when there is no such active key."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1


async def lookup_key(conn: AsyncConnection, key: str, now: datetime) -> Any:
    """The row (id, account_id, scope, workflow_ids, expires_at, last_used_at) of a key that is
    neither revoked nor expired at `now`, or None."""
    result = await conn.execute(KEY_LOOKUP, {"b_key_hash": hash_key(key), "b_now": now})
    return result.first()


async def touch_key(conn: AsyncConnection, key_id: str, now: datetime, stale: datetime) -> None:
    """Record a use of the key at `now`, unless one was recorded since `stale`."""
    await conn.execute(KEY_TOUCH, {"b_key": key_id, "b_now": now, "b_stale": stale})


def grant_of(row: Mapping[str, Any]) -> Grant:
    """The grant a stored key row carries."""
    ids, expires = row["workflow_ids"], row["expires_at"]
    if expires is not None and expires.tzinfo is None:  # SQLite: stored as UTC, read naive
        expires = expires.replace(tzinfo=UTC)
    return Grant(row["scope"], None if ids is None else frozenset(ids), expires)

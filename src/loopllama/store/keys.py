"""Accounts and API keys: keys are shown once and stored only as a SHA-256 hash."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.ids import new_id, utcnow
from loopllama.store.statements import ACCOUNT_FOR_KEY
from loopllama.store.tables import accounts, api_keys

KEY_PREFIX = "ll_live_"


def generate_key() -> str:
    """`ll_live_` and 32 random bytes, base64url without padding (43 characters)."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
    conn: AsyncConnection, account: str, label: str | None, rate_limit: str | None = None
) -> tuple[str, str]:
    """Create a key for `account` (created if new). Returns (key id, the key itself).
    `rate_limit` ("5/second"): the key's own request limit instead of the server's."""
    account_id = await conn.scalar(select(accounts.c.id).where(accounts.c.name == account))
    now = utcnow()
    if account_id is None:
        account_id = new_id()
        await conn.execute(accounts.insert().values(id=account_id, name=account, created_at=now))
    key = generate_key()
    key_id = new_id()
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            account_id=account_id,
            label=label,
            key_hash=hash_key(key),
            hint=key[: len(KEY_PREFIX) + 4] + "…",
            created_at=now,
            rate_limit=rate_limit,
        )
    )
    return key_id, key


async def list_keys(conn: AsyncConnection) -> list[dict[str, Any]]:
    query = (
        select(
            api_keys.c.id,
            accounts.c.name.label("account"),
            api_keys.c.label,
            api_keys.c.hint,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
            api_keys.c.rate_limit,
        )
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .order_by(api_keys.c.created_at)
    )
    return [dict(row._mapping) for row in await conn.execute(query)]


async def revoke_key(conn: AsyncConnection, key_id: str) -> bool:
    """Revoke a key; False when there is no such active key."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1


async def account_for_key(conn: AsyncConnection, key: str) -> str | None:
    """The account id of an active key, or None."""
    found = await active_key(conn, key)
    return found.account_id if found else None


async def active_key(conn: AsyncConnection, key: str) -> Any:
    """The active key's row (account_id, id, rate_limit), or None."""
    return (await conn.execute(ACCOUNT_FOR_KEY, {"b_key_hash": hash_key(key)})).first()

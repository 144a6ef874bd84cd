"""Helpers of the limits, cost and usage tests: apps with chosen limits, keys with their own."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from loopllama.settings import LimitSettings
from loopllama.store.db import Database
from loopllama.store.keys import create_key

# The Redis on every machine (../shared/SERVICES.md); this suite's own database number.
REDIS_TEST_URL = "redis://127.0.0.1:6379/13"


def redis_available() -> bool:
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


def limited(settings: Any, **limits: Any) -> Any:
    """`settings` with these rate limits (the suite's defaults are out of reach)."""
    values = {"rate_limit": "1000000/second", "run_rate_limit": "1000000/second", **limits}
    return settings.model_copy(update={"limits": LimitSettings(**values)})


async def new_key(settings: Any, account: str, rate_limit: str | None = None) -> str:
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            _, key = await create_key(conn, account, None, rate_limit=rate_limit)
    finally:
        await db.dispose()
    return key


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

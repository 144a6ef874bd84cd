"""Keys with a given grant, made in the database as an operator would, and the route table."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import update

from loopllama.permissions import Grant
from loopllama.store.db import Database
from loopllama.store.keys import create_key
from loopllama.store.tables import api_keys

PARAM = re.compile(r"\{(\w+)\}")


async def make_key(
    settings: Any,
    account: str = "acme",
    scope: str = "admin",
    workflow_ids: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """(key id, key) for `account` with this grant."""
    grant = Grant(scope, None if workflow_ids is None else frozenset(workflow_ids), expires_at)
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            return await create_key(conn, account, None, grant)
    finally:
        await db.dispose()


async def set_key_columns(settings: Any, key_id: str, **values: Any) -> None:
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
    finally:
        await db.dispose()


def v1_routes(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation) for every /v1 operation of an OpenAPI document."""
    return sorted(
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        if path.startswith("/v1")
        for method, operation in operations.items()
    )


def route_table() -> list[tuple[str, str, dict[str, Any]]]:
    """The app's /v1 operations, read from its OpenAPI document (no database needed)."""
    from loopllama.api.app import create_app
    from loopllama.settings import DatabaseSettings, Settings

    return v1_routes(create_app(Settings(database=DatabaseSettings(url="sqlite://"))).openapi())


def expected_scope(method: str, path: str) -> str:
    """Part 9b's table: every GET but the keys API is `read`; triggering and acting on a run
    (respond, cancel, retry, fork) is `run`; everything else, the keys API included, `admin`."""
    if path.startswith("/v1/keys"):
        return "admin"
    if method == "GET":
        return "read"
    if method == "POST" and (
        path == "/v1/workflows/{workflow_id}/runs"
        or re.fullmatch(r"/v1/runs/\{run_id\}/(respond|cancel|retry|fork)", path)
    ):
        return "run"
    return "admin"


def fill(path: str, **ids: str) -> str:
    return PARAM.sub(lambda m: ids.get(m[1], "nope"), path)

"""Typed dependencies, so routes read like prose: `account: AccountDep`, `services: ServicesDep`.

Authentication runs before anything else a route does (the reference's order of checks:
401, then 404, then 400, then 409), which is why bodies are parsed inside the routes, after
the resource lookup, with `parse_json`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.api.errors import MalformedJSON
from loopllama.api.services import Services
from loopllama.errors import InvalidRequest, NotFound, RateLimited, Unauthenticated
from loopllama.store import runs as run_store
from loopllama.store import workflows as workflow_store
from loopllama.store.keys import KEY_PREFIX, active_key


# async, like every dependency here: FastAPI runs a plain `def` one in a worker thread.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_account(request: Request, services: ServicesDep) -> str:
    header = request.headers.get("authorization")
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Missing Bearer token")
    token = token.strip()
    if not token.startswith(KEY_PREFIX) or len(token) <= len(KEY_PREFIX):
        raise Unauthenticated("Invalid token format")
    async with services.db.query() as conn:
        key = await active_key(conn, token)
    if key is None:
        raise Unauthenticated("Invalid API key")
    await _rate_limit(request, services, key.id, key.rate_limit)
    return key.account_id


# Routes whose POST starts a run: they count against the run-trigger limit too.
_TRIGGERS = frozenset(
    {"/v1/workflows/{workflow_id}/runs", "/v1/runs/{run_id}/retry", "/v1/runs/{run_id}/fork"}
)


async def _rate_limit(
    request: Request, services: Services, key_id: str, key_rate: str | None
) -> None:
    """After the 401 checks, before anything else: count the request against the key's
    limits (api/ratelimit.py); the headers go on whatever the route answers."""
    route = request.scope.get("route")
    trigger = request.method == "POST" and getattr(route, "path", None) in _TRIGGERS
    headers, refused = await services.limiter.admit(key_id, key_rate, trigger=trigger)
    request.state.rate_limit_headers = headers
    if refused is not None:
        raise RateLimited(refused)


AccountDep = Annotated[str, Depends(get_account)]


def parse_json(body: bytes) -> Any:
    """A request body as JSON, or 400 `Malformed JSON body`.

    Routes read the raw body first (never while holding a database transaction: a slow client
    must not hold SQLite's write lock) and parse it after the resource lookup.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedJSON() from None
    # PostgreSQL cannot store NUL in text; refuse it on every backend alike. JSON can only
    # carry NUL escaped, so the walk runs only when the escape appears in the body.
    if b"\\u0000" in body and _has_nul(value):
        raise InvalidRequest("Strings must not contain NUL (\\u0000) characters")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def get_workflow_or_404(
    conn: AsyncConnection, account_id: str, workflow_id: str
) -> dict[str, Any]:
    workflow = await workflow_store.get_workflow(conn, account_id, workflow_id)
    if workflow is None:
        raise NotFound()
    return workflow


async def get_run_or_404(conn: AsyncConnection, account_id: str, run_id: str) -> dict[str, Any]:
    run = await run_store.get_run(conn, account_id, run_id)
    if run is None:
        raise NotFound()
    return run

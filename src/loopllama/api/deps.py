"""Typed dependencies, so routes read like prose: `account: AccountDep`, `services: ServicesDep`.

Every /v1 route declares the scope it needs in its decorator, in one line:

    @router.get("/v1/runs/{run_id}", dependencies=[requires("read")], ...)

`requires` authenticates the key (401) and checks its scope (403) before anything else the
route does; then the route looks its resource up (404: `get_workflow_or_404`,
`get_run_or_404`, which also hide what a workflow-limited key may not see), then parses its body
(400, `parse_json`), then acts (409): the order of checks of the reference and of part 9b.
A test walks the OpenAPI document and fails on any /v1 operation without a scope.

`AccountDep` is the account id as a `str` (store functions take it as is); it is a `Principal`
that also carries the key's id and grant (permissions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.api.errors import MalformedJSON
from loopllama.api.services import Services
from loopllama.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from loopllama.limits import MAX_JSON_DEPTH, json_depth_exceeds, plausible_id
from loopllama.permissions import (
    SCOPES,
    Principal,
    Scope,
    covers,
    may_see_endpoint,
    may_see_workflow,
)
from loopllama.store import runs as run_store
from loopllama.store import workflows as workflow_store
from loopllama.store.keys import KEY_PREFIX, grant_of, lookup_key
from loopllama.telemetry import fields
from loopllama.webhooks import store as webhook_store


# async, like every dependency here: FastAPI runs a plain `def` one in a worker thread.
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_account(request: Request) -> Principal:
    """The key's principal: authenticated once per request (401), then read back.

    It takes the services from the app rather than as a dependency: every level of FastAPI's
    dependency tree costs on every request, and clients poll `GET /v1/runs/{id}` hard.
    """
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    services: Services = request.app.state.services
    header = request.headers.get("authorization")
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Missing Bearer token")
    token = token.strip()
    if not token.startswith(KEY_PREFIX) or len(token) <= len(KEY_PREFIX):
        raise Unauthenticated("Invalid token format")
    now = datetime.now(UTC)
    async with services.db.query() as conn:
        row = await lookup_key(conn, token, now)
    if row is None:  # unknown, revoked or expired: the statement refuses all three
        raise Unauthenticated("Invalid API key")
    services.key_usage.note(services.db, row.id, row.last_used_at, now)
    fields.annotate(account_id=row.account_id)  # on this request's log lines
    await _rate_limit(request, services, row.id, row.rate_limit)
    request.state.principal = Principal(row.account_id, row.id, grant_of(row._mapping))
    return request.state.principal


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


def requires(scope: Scope, *, all_workflows: bool = False) -> Any:
    """The dependency a route declares its scope with: `dependencies=[requires("run")]`.

    It authenticates (401), then refuses a key whose scope is narrower (403). The scope shows
    in the OpenAPI document as the operation's bearer requirement (and `x-required-scope`).
    `all_workflows`: the route acts beyond any one workflow (creating a workflow), so a
    workflow-limited key may not call it whatever its scope.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return Security(ScopeCheck(scope, all_workflows), scopes=[scope])


class ScopeCheck(HTTPBearer):
    """What `requires` returns: the bearer scheme as OpenAPI declares it (FastAPI lists a
    security dependency's scopes as the operation's requirement), and the check itself, in
    one dependency (see `get_account` on why few). The header is parsed by `get_account`,
    with the reference's messages, not by `HTTPBearer`."""

    def __init__(self, scope: Scope, all_workflows: bool) -> None:
        super().__init__(auto_error=False, scheme_name="bearer", bearerFormat="ll_live_...")
        self.scope = scope
        self.all_workflows = all_workflows

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        account = await get_account(request)
        if not covers(account.scope, self.scope):
            raise PermissionDenied()
        if self.all_workflows and account.workflow_ids is not None:
            raise PermissionDenied()
        return account


def parse_json(body: bytes) -> Any:
    """A request body as JSON, or 400 `Malformed JSON body`.

    Routes read the raw body first (never while holding a database transaction: a slow client
    must not hold SQLite's write lock) and parse it after the resource lookup.
    """
    if json_depth_exceeds(body):  # before parsing: deep values break recursive code later
        raise InvalidRequest(f"JSON body must not be nested more than {MAX_JSON_DEPTH} levels deep")
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
    """The account's workflow, or 404 (also for a workflow the key is not limited to)."""
    if not plausible_id(workflow_id) or not may_see_workflow(account_id, workflow_id):
        raise NotFound()
    workflow = await workflow_store.get_workflow(conn, account_id, workflow_id)
    if workflow is None:
        raise NotFound()
    return workflow


async def get_run_or_404(conn: AsyncConnection, account_id: str, run_id: str) -> dict[str, Any]:
    """The account's run, or 404 (also for a run of a workflow the key is not limited to)."""
    if not plausible_id(run_id):
        raise NotFound()
    run = await run_store.get_run(conn, account_id, run_id)
    if run is None or not may_see_workflow(account_id, run["workflow_id"]):
        raise NotFound()
    return run


async def get_webhook_or_404(
    conn: AsyncConnection, account_id: str, webhook_id: str
) -> dict[str, Any]:
    """The account's webhook endpoint, or 404 (also one a workflow-limited key may not see)."""
    if not plausible_id(webhook_id):
        raise NotFound()
    endpoint = await webhook_store.get_endpoint(conn, account_id, webhook_id)
    if endpoint is None or not may_see_endpoint(account_id, endpoint["workflow_id"]):
        raise NotFound()
    return endpoint

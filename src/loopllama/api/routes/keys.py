"""Key routes (admin scope): create a key no wider than the caller's, list, revoke.

A workflow-limited admin key manages only keys limited to workflows of its own: others are
left out of its list and are 404 to it, as if they did not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from loopllama.api.deps import AccountDep, ServicesDep, parse_json, requires
from loopllama.api.errors import JSON
from loopllama.api.openapi import body_of, responses
from loopllama.errors import InvalidRequest, NotFound, PermissionDenied, SelfRevocation
from loopllama.permissions import Grant, Principal
from loopllama.schemas.keys import KeyCreate, key_public
from loopllama.schemas.validation import validate
from loopllama.store import keys as store
from loopllama.store.workflows import existing_workflow_ids

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post(
    "",
    dependencies=[requires("admin")],
    status_code=201,
    openapi_extra=body_of(KeyCreate),
    responses=responses("CreatedKey", 201, errors=(400, 403)),
    summary="Create a key (its scope, workflows and lifetime within the caller's)",
)
async def create_key(request: Request, account: AccountDep, services: ServicesDep) -> JSON:
    """The new key is in `key`, shown this once; only its hash is stored."""
    caller = _principal(account)
    body = validate(KeyCreate, parse_json(await request.body()))
    expires_at = body.expiry()
    grant = Grant(
        scope=body.scope,
        workflow_ids=caller.workflow_ids
        if body.workflow_ids is None
        else frozenset(body.workflow_ids),
        expires_at=caller.grant.expires_at if expires_at is None else expires_at,
    )
    if not grant.within(caller.grant):
        raise PermissionDenied()
    async with services.db.write() as conn:
        if body.workflow_ids is not None:
            known = await existing_workflow_ids(conn, account, body.workflow_ids)
            unknown = [wid for wid in body.workflow_ids if wid not in known]
            if unknown:
                raise InvalidRequest(f"Unknown workflow: {unknown[0]}")
        row, key = await store.insert_key(conn, account, body.label, grant)
    return JSON({"data": {**key_public(row), "key": key}}, status_code=201)


@router.get(
    "",
    dependencies=[requires("admin")],
    responses=responses("KeyList", errors=(403,)),
    summary="List the account's keys, newest first (never the keys themselves)",
)
async def list_keys(account: AccountDep, services: ServicesDep) -> JSON:
    caller = _principal(account)
    async with services.db.read() as conn:
        rows = await store.list_account_keys(conn, account)
    return JSON({"data": [key_public(row) for row in rows if _manages(caller, row)]})


@router.delete(
    "/{key_id}",
    dependencies=[requires("admin")],
    status_code=204,
    responses=responses(None, 204, errors=(403, 404, 409)),
    summary="Revoke a key: requests with it fail at once",
)
async def revoke_key(key_id: str, account: AccountDep, services: ServicesDep) -> Response:
    """Revoking a revoked key changes nothing (204); a key cannot revoke itself (409)."""
    caller = _principal(account)
    async with services.db.write() as conn:
        row = None if "\x00" in key_id else await store.get_account_key(conn, account, key_id)
        if row is None or not _manages(caller, row):
            raise NotFound()
        if key_id == caller.key_id:
            raise SelfRevocation()
        await store.revoke_key(conn, key_id)
    return Response(status_code=204)


def _principal(account: str) -> Principal:
    assert isinstance(account, Principal)  # AccountDep always is one
    return account


def _manages(caller: Principal, row: dict[str, Any]) -> bool:
    """A limited key sees keys limited to some of its own workflows; an unlimited one, all."""
    limit = caller.workflow_ids
    ids = row["workflow_ids"]
    return limit is None or (ids is not None and set(ids) <= limit)

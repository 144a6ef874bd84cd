"""Workflow routes: list, create, retrieve, update (incl. pause / reactivate, lock / unlock),
delete, and the versions: list, retrieve, restore."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from loopllama.api.deps import (
    AccountDep,
    ServicesDep,
    get_workflow_or_404,
    parse_json,
    plausible_id,
    requires,
)
from loopllama.api.errors import JSON
from loopllama.api.openapi import body_of, responses
from loopllama.api.services import Services
from loopllama.engine.prompts import DEFAULT_CREW
from loopllama.engine.workflow_rules import check_workflow
from loopllama.errors import InvalidRequest, VersionNotFound, WorkflowLocked
from loopllama.limits import MAX_ID_LENGTH
from loopllama.permissions import workflow_limit
from loopllama.schemas.validation import validate
from loopllama.schemas.workflows import (
    WorkflowCreate,
    WorkflowUpdate,
    agent_record,
    tool_record,
    version_public,
    workflow_public,
)
from loopllama.store import workflows as store

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])

DEFAULT_PAGE = 100  # `after` without `limit`
LIMIT_HELP = "Page size, 1-1000 (100 when only `after` is given). Adds `has_more`."
AFTER_HELP = "A workflow id: the page starts after it in the list's order."


@router.get(
    "",
    dependencies=[requires("read")],
    responses=responses("WorkflowList", errors=(400,)),
    summary="List workflows (every one, or a page with limit and after)",
)
async def list_workflows(
    account: AccountDep,
    services: ServicesDep,
    limit: Annotated[int | None, Query(ge=1, le=1000, description=LIMIT_HELP)] = None,
    after: Annotated[str | None, Query(max_length=MAX_ID_LENGTH, description=AFTER_HELP)] = None,
) -> JSON:
    """Every workflow of the account (that the key may see), most recently updated first;
    with `limit` or `after`, one page of them and `has_more`."""
    only = workflow_limit(account)
    async with services.db.read() as conn:
        position = None
        if after is not None:
            position = plausible_id(after) and await store.list_position(conn, account, after)
            if not position:
                raise InvalidRequest("Invalid 'after': not a workflow of this account")
        if limit is None and after is None:
            rows = await store.list_workflows(conn, account, only=only)
            return JSON({"data": [workflow_public(row) for row in rows]})
        page = limit or DEFAULT_PAGE
        rows = await store.list_workflows(conn, account, limit=page + 1, after=position, only=only)
    data = [workflow_public(row) for row in rows[:page]]
    return JSON({"data": data, "has_more": len(rows) > page})


@router.post(
    "",
    dependencies=[requires("admin", all_workflows=True)],
    status_code=201,
    openapi_extra=body_of(WorkflowCreate),
    responses=responses("Workflow", 201, errors=(400,)),
    summary="Create a workflow",
)
async def create_workflow(request: Request, account: AccountDep, services: ServicesDep) -> JSON:
    """Create a workflow; the default planner->writer crew and model fill what is omitted."""
    body = validate(WorkflowCreate, parse_json(await request.body()))
    values: dict[str, Any] = {
        "name": body.name,
        "description": body.description,
        "model": body.model if body.model is not None else services.default_model,
        "crew": [agent_record(a) for a in body.crew] if body.crew else list(DEFAULT_CREW),
        "human_in_the_loop": body.human_in_the_loop.model_dump()
        if body.human_in_the_loop
        else None,
        "tools": [tool_record(tool) for tool in body.tools],
        "max_run_seconds": body.max_run_seconds,
        "max_cost_usd": body.max_cost_usd,
        "max_tokens": body.max_tokens,
    }
    check_workflow(values, services.providers, smtp_configured=_smtp(services))
    async with services.db.write() as conn:
        row = await store.insert_workflow(conn, account, values)
    return JSON({"data": workflow_public(row, with_updated_at=False)}, status_code=201)


@router.get(
    "/{workflow_id}",
    dependencies=[requires("read")],
    responses=responses("Workflow"),
    summary="Retrieve a workflow",
)
async def retrieve_workflow(workflow_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        row = await get_workflow_or_404(conn, account, workflow_id)
    return JSON({"data": workflow_public(row)})


@router.patch(
    "/{workflow_id}",
    dependencies=[requires("admin")],
    openapi_extra=body_of(WorkflowUpdate),
    responses=responses("Workflow", errors=(400, 403, 404)),
    summary="Update a workflow (pause with status: paused, reactivate with status: active; "
    "lock with locked: true)",
)
async def update_workflow(
    workflow_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    raw = await request.body()
    async with services.db.write() as conn:
        row = await get_workflow_or_404(conn, account, workflow_id)
        body = validate(WorkflowUpdate, parse_json(raw))
        changes = _changes(body, row)
        check_workflow({**row, **changes}, services.providers, smtp_configured=_smtp(services))
        _check_unlocked(row, changes)
        changes = await store.update_workflow(conn, row, changes)
    return JSON({"data": workflow_public({**row, **changes})})


# What a locked workflow still lets a PATCH change.
_LOCK_FREE = frozenset({"locked", "status"})


def _check_unlocked(row: dict[str, Any], changes: dict[str, Any] | None = None) -> None:
    """A locked workflow refuses every change but `locked` and `status` (and a restore or a
    delete: `changes` None). Only a real change counts: sending a field's current value is
    not one."""
    if not row["locked"]:
        return
    if changes is None or any(
        row[field] != value for field, value in changes.items() if field not in _LOCK_FREE
    ):
        raise WorkflowLocked()


def _smtp(services: Services) -> bool:
    return services.settings.tools.smtp_url is not None


def _changes(body: WorkflowUpdate, row: dict[str, Any]) -> dict[str, Any]:
    """The stored form of every field the PATCH body sets."""
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        if field == "crew":
            value = [agent_record(agent) for agent in body.crew]
        elif field == "tools":
            previous = {tool["name"]: tool for tool in row["tools"]}
            value = [tool_record(tool, previous.get(tool.name)) for tool in body.tools]
        elif field == "human_in_the_loop" and value is not None:
            value = value.model_dump()
        changes[field] = value
    return changes


@router.delete(
    "/{workflow_id}",
    dependencies=[requires("admin")],
    status_code=204,
    responses=responses(None, 204, errors=(404, 403)),
    summary="Delete a workflow (its runs stay retrievable by id)",
)
async def delete_workflow(workflow_id: str, account: AccountDep, services: ServicesDep) -> Response:
    async with services.db.write() as conn:
        row = await get_workflow_or_404(conn, account, workflow_id)
        _check_unlocked(row)
        await store.delete_workflow(conn, workflow_id)
    return Response(status_code=204)


@router.get(
    "/{workflow_id}/versions",
    dependencies=[requires("read")],
    responses=responses("WorkflowVersionList"),
    summary="List a workflow's versions, newest first",
)
async def list_versions(workflow_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        await get_workflow_or_404(conn, account, workflow_id)
        rows = await store.list_versions(conn, workflow_id)
    return JSON({"data": [version_public(row) for row in rows]})


@router.get(
    "/{workflow_id}/versions/{version}",
    dependencies=[requires("read")],
    responses=responses("WorkflowVersion"),
    summary="Retrieve one version of a workflow",
)
async def retrieve_version(
    workflow_id: str, version: str, account: AccountDep, services: ServicesDep
) -> JSON:
    async with services.db.read() as conn:
        await get_workflow_or_404(conn, account, workflow_id)
        row = await _version_or_404(conn, workflow_id, version)
    return JSON({"data": version_public(row)})


@router.post(
    "/{workflow_id}/versions/{version}/restore",
    dependencies=[requires("admin")],
    responses=responses("Workflow", errors=(404, 403)),
    summary="Make a version's definition current again (as a new version)",
)
async def restore_version(
    workflow_id: str, version: str, account: AccountDep, services: ServicesDep
) -> JSON:
    async with services.db.write() as conn:
        row = await get_workflow_or_404(conn, account, workflow_id)
        old = await _version_or_404(conn, workflow_id, version)
        _check_unlocked(row)
        changes = await store.update_workflow(conn, row, dict(old["definition"]))
        if "version" not in changes:  # restoring the current definition: still a new version
            changes = await store.add_version(conn, {**row, **changes})
    return JSON({"data": workflow_public({**row, **changes})})


async def _version_or_404(conn: Any, workflow_id: str, version: str) -> dict[str, Any]:
    number = int(version) if version.isdigit() and len(version) < 10 else None
    row = await store.get_version(conn, workflow_id, number) if number else None
    if row is None:
        raise VersionNotFound()
    return row

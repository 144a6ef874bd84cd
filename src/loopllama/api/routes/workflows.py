"""Workflow routes: list, create, retrieve, update (incl. pause / reactivate), delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from loopllama.api.deps import AccountDep, ServicesDep, get_workflow_or_404, parse_json
from loopllama.api.errors import JSON
from loopllama.api.openapi import body_of, responses
from loopllama.api.services import Services
from loopllama.engine.prompts import DEFAULT_CREW
from loopllama.engine.workflow_rules import check_workflow
from loopllama.schemas.validation import validate
from loopllama.schemas.workflows import (
    WorkflowCreate,
    WorkflowUpdate,
    agent_record,
    tool_record,
    workflow_public,
)
from loopllama.store import workflows as store

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])


@router.get("", responses=responses("WorkflowList"), summary="List workflows")
async def list_workflows(account: AccountDep, services: ServicesDep) -> JSON:
    """Every workflow of the account, most recently updated first."""
    async with services.db.read() as conn:
        rows = await store.list_workflows(conn, account)
    return JSON({"data": [workflow_public(row) for row in rows]})


@router.post(
    "",
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
    }
    check_workflow(values, services.providers, smtp_configured=_smtp(services))
    async with services.db.write() as conn:
        row = await store.insert_workflow(conn, account, values)
    return JSON({"data": workflow_public(row, with_updated_at=False)}, status_code=201)


@router.get("/{workflow_id}", responses=responses("Workflow"), summary="Retrieve a workflow")
async def retrieve_workflow(workflow_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        row = await get_workflow_or_404(conn, account, workflow_id)
    return JSON({"data": workflow_public(row)})


@router.patch(
    "/{workflow_id}",
    openapi_extra=body_of(WorkflowUpdate),
    responses=responses("Workflow", errors=(400,)),
    summary="Update a workflow (pause with status: paused, reactivate with status: active)",
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
        changes = await store.update_workflow(conn, workflow_id, changes)
    return JSON({"data": workflow_public({**row, **changes})})


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
    status_code=204,
    responses=responses(None, 204),
    summary="Delete a workflow (its runs stay retrievable by id)",
)
async def delete_workflow(workflow_id: str, account: AccountDep, services: ServicesDep) -> Response:
    async with services.db.write() as conn:
        await get_workflow_or_404(conn, account, workflow_id)
        await store.delete_workflow(conn, workflow_id)
    return Response(status_code=204)

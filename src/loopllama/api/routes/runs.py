"""Run routes: trigger, list, retrieve, and respond to a paused run."""

from __future__ import annotations

from fastapi import APIRouter, Request

from loopllama import telemetry
from loopllama.api.deps import AccountDep, ServicesDep, get_workflow_or_404, parse_json
from loopllama.api.errors import JSON
from loopllama.api.openapi import body_of, responses
from loopllama.engine import transitions
from loopllama.errors import InvalidRequest, NotFound, WorkflowPaused
from loopllama.schemas.runs import RespondIn, RunCreate, run_public, step_public
from loopllama.schemas.validation import validate
from loopllama.store import runs as store

router = APIRouter(tags=["runs"])


@router.post(
    "/v1/workflows/{workflow_id}/runs",
    status_code=202,
    openapi_extra=body_of(RunCreate),
    responses=responses("Run", 202, errors=(400, 404, 409)),
    summary="Trigger a run",
)
async def trigger_run(
    workflow_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    """Record the run `queued` and answer 202 in one transaction, then start executing it."""
    raw = await request.body()
    async with services.db.write() as conn:
        workflow = await get_workflow_or_404(conn, account, workflow_id)
        body = validate(RunCreate, parse_json(raw))
        if workflow["status"] == "paused":
            raise WorkflowPaused()
        run = await transitions.create_run(conn, account, workflow, body.input)
        await services.dispatcher.enqueue(conn, run["id"])
    services.dispatcher.submit(run["id"])
    telemetry.run_reached("queued")
    return JSON({"data": run_public(run)}, status_code=202)


@router.get(
    "/v1/workflows/{workflow_id}/runs",
    responses=responses("RunList"),
    summary="List the 50 newest runs of a workflow",
)
async def list_runs(workflow_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        await get_workflow_or_404(conn, account, workflow_id)
        rows = await store.list_runs(conn, account, workflow_id)
    return JSON({"data": [run_public(row) for row in rows]})


@router.get("/v1/runs/{run_id}", responses=responses("RunWithSteps"), summary="Retrieve a run")
async def retrieve_run(run_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    """The run with its ordered steps (and each step's tool calls)."""
    async with services.db.read() as conn:
        run = await store.get_run(conn, account, run_id)
        if run is None:
            raise NotFound()
        steps = await store.get_steps(conn, run_id)
        calls = await store.get_tool_calls(conn, run_id) if steps else []
    calls_of: dict[str, list] = {}
    for call in calls:
        calls_of.setdefault(call["step_id"], []).append(call)
    body = run_public(run)
    body["steps"] = [step_public(step, calls_of.get(step["id"], [])) for step in steps]
    return JSON({"data": body})


@router.post(
    "/v1/runs/{run_id}/respond",
    status_code=202,
    openapi_extra=body_of(RespondIn),
    responses=responses("RespondAccepted", 202, errors=(400, 404, 409)),
    summary="Answer a paused run (input, approve or reject) and resume it",
)
async def respond(
    run_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    raw = await request.body()
    async with services.db.write() as conn:
        run = await store.get_run(conn, account, run_id)
        if run is None:
            raise NotFound()
        body = validate(RespondIn, parse_json(raw))
        if body.action == "input" and body.input is None:
            raise InvalidRequest("Required")
        await transitions.respond(
            conn, run, action=body.action, answer=body.input, reason=body.reason
        )
        await services.dispatcher.enqueue(conn, run_id)
    services.dispatcher.submit(run_id)
    return JSON({"data": {"id": run_id, "status": "running"}}, status_code=202)

"""Run routes: trigger (idempotent with a key), list, retrieve, respond to a paused run, and
run control: cancel, retry, fork."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama import telemetry
from loopllama.api.deps import (
    AccountDep,
    ServicesDep,
    get_run_or_404,
    get_workflow_or_404,
    parse_json,
    requires,
)
from loopllama.api.errors import JSON
from loopllama.api.lean_route import LeanRoute
from loopllama.api.openapi import body_of, responses
from loopllama.engine import transitions
from loopllama.errors import (
    IdempotencyMismatch,
    InvalidRequest,
    RunNotRetryable,
    VersionNotFound,
    WorkflowDeleted,
    WorkflowPaused,
)
from loopllama.ids import new_id
from loopllama.limits import MAX_ID_LENGTH
from loopllama.permissions import workflow_limit
from loopllama.schemas.runs import (
    RUN_STATUSES,
    ForkIn,
    RespondIn,
    RunCreate,
    run_list_query,
    run_public,
    step_public,
)
from loopllama.schemas.validation import validate
from loopllama.store import idempotency
from loopllama.store import runs as store
from loopllama.store import workflows as workflow_store

# Lean (api/lean_route.py): clients poll a run hard, and FastAPI's request wrapper is a tenth
# of a poll.
router = APIRouter(tags=["runs"], route_class=LeanRoute)

REPLAYED = {"Idempotent-Replayed": "true"}


@router.post(
    "/v1/workflows/{workflow_id}/runs",
    dependencies=[requires("run")],
    status_code=202,
    openapi_extra={
        **body_of(RunCreate),
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "1-255 visible ASCII characters; the same key and request "
                "within 24 hours answer the original run (Idempotent-Replayed: true).",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ],
        "responses": {
            "202": {
                "headers": {
                    "Idempotent-Replayed": {
                        "description": "`true` when the answer is the run an earlier request "
                        "with the same Idempotency-Key created.",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                }
            }
        },
    },
    responses=responses("Run", 202, errors=(400, 404, 409, 422)),
    summary="Trigger a run",
)
async def trigger_run(
    workflow_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    """Record the run `queued` and answer 202 in one transaction, then start executing it.

    With an `Idempotency-Key`, the key is recorded in that same transaction: of concurrent
    requests with one key, one creates the run and the others answer it."""
    raw = await request.body()
    key = request.headers.get("idempotency-key")
    async with services.db.write() as conn:
        workflow = await get_workflow_or_404(conn, account, workflow_id)
        data = parse_json(raw)
        body = validate(RunCreate, data)
        if key is not None and not _valid_key(key):
            raise InvalidRequest("Invalid Idempotency-Key header")
        version = None
        if body.version is not None:
            version = await workflow_store.get_version(conn, workflow_id, body.version)
            if version is None:
                raise VersionNotFound()
        run_id = new_id()
        if key is not None:
            fingerprint = idempotency.request_hash(workflow_id, data)
            hours = services.settings.engine.idempotency_hours
            held = await idempotency.claim(conn, account, key, fingerprint, run_id, hours)
            if held is not None:
                if held["request_hash"] != fingerprint:
                    raise IdempotencyMismatch()
                original = await get_run_or_404(conn, account, held["run_id"])
                return JSON({"data": run_public(original)}, status_code=202, headers=REPLAYED)
        if workflow["status"] == "paused":
            raise WorkflowPaused()
        run = await transitions.create_run(
            conn, account, workflow, body.input, version=version, run_id=run_id
        )
        await services.dispatcher.enqueue(conn, run["id"])
    services.dispatcher.submit(run["id"], account)
    telemetry.run_reached("queued")
    return JSON({"data": run_public(run)}, status_code=202)


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and all("!" <= char <= "~" for char in key)


_ID = {"type": "string", "pattern": "^[A-Za-z0-9]+$", "minLength": 1, "maxLength": MAX_ID_LENGTH}
_LIST_PARAMETERS = [
    {
        "name": "status",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(RUN_STATUSES)},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "A run id: the runs older than that one.",
        "schema": _ID,
    },
]


@router.get(
    "/v1/runs",
    dependencies=[requires("read")],
    responses=responses("RunPage", errors=(400,)),
    openapi_extra={
        "parameters": [
            {"name": "workflow_id", "in": "query", "required": False, "schema": _ID},
            *_LIST_PARAMETERS,
        ]
    },
    summary="List the account's runs across workflows, newest first",
)
async def list_all_runs(request: Request, account: AccountDep, services: ServicesDep) -> JSON:
    query = run_list_query(request.query_params)
    async with services.db.query() as conn:  # one statement (two for an unknown cursor)
        rows = await _page(conn, account, query.workflow_id, query)
    return _page_response(rows, query.limit)


@router.get(
    "/v1/workflows/{workflow_id}/runs",
    dependencies=[requires("read")],
    responses=responses("RunPage", errors=(404, 400)),
    openapi_extra={"parameters": _LIST_PARAMETERS},
    summary="List a workflow's runs, newest first (the 50 newest without parameters)",
)
async def list_runs(
    workflow_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    async with services.db.read() as conn:
        await get_workflow_or_404(conn, account, workflow_id)
        query = run_list_query(request.query_params)
        rows = await _page(conn, account, workflow_id, query)
    return _page_response(rows, query.limit)


async def _page(
    conn: AsyncConnection, account: str, workflow_id: str | None, query: Any
) -> list[dict[str, Any]]:
    rows = await store.list_runs(
        conn,
        account,
        workflow_id=workflow_id,
        status=query.status,
        limit=query.limit + 1,  # one more tells whether there is a next page
        after=query.after,
        only=workflow_limit(account),
    )
    # An empty page after a cursor: the last page, or a cursor that is no run of the account.
    if (
        not rows
        and query.after is not None
        and await store.run_position(conn, account, query.after) is None
    ):
        raise InvalidRequest("Invalid 'after': not a run of this account")
    return rows


def _page_response(rows: list[dict[str, Any]], limit: int) -> JSON:
    return JSON({"data": [run_public(row) for row in rows[:limit]], "has_more": len(rows) > limit})


@router.get(
    "/v1/runs/{run_id}",
    dependencies=[requires("read")],
    responses=responses("RunWithSteps"),
    summary="Retrieve a run",
)
async def retrieve_run(run_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    """The run with its ordered steps (and each step's tool calls)."""
    async with services.db.read() as conn:
        run = await get_run_or_404(conn, account, run_id)
        steps = await store.get_public_steps(conn, run_id)
        tools_used = any(step["has_tool_calls"] for step in steps)
        calls = await store.get_tool_calls(conn, run_id) if tools_used else []
    calls_of: dict[str, list] = {}
    for call in calls:
        calls_of.setdefault(call["step_id"], []).append(call)
    body = run_public(run)
    body["steps"] = [step_public(step, calls_of.get(step["id"], [])) for step in steps]
    return JSON({"data": body})


@router.post(
    "/v1/runs/{run_id}/respond",
    dependencies=[requires("run")],
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
        run = await get_run_or_404(conn, account, run_id)
        body = validate(RespondIn, parse_json(raw))
        if body.action == "input" and body.input is None:
            raise InvalidRequest("Required")
        await transitions.respond(
            conn, run, action=body.action, answer=body.input, reason=body.reason
        )
        await services.dispatcher.enqueue(conn, run_id)
    services.dispatcher.submit(run_id, account)
    return JSON({"data": {"id": run_id, "status": "running"}}, status_code=202)


# -- run control -------------------------------------------------------------------------------


@router.post(
    "/v1/runs/{run_id}/cancel",
    dependencies=[requires("run")],
    status_code=202,
    responses=responses("Run", 202, errors=(404, 409)),
    summary="Cancel a queued, running or paused run (its model call in flight is aborted)",
)
async def cancel_run(run_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    """Recorded in this request's transaction: the 202 shows `cancelled`, and from then on no
    model or tool call of the run starts, in any process."""
    async with services.db.write() as conn:
        await get_run_or_404(conn, account, run_id)
        await transitions.cancel_run(conn, run_id)
        await services.dispatcher.cancel_in(conn, run_id)
        run = await get_run_or_404(conn, account, run_id)
    services.dispatcher.cancel(run_id)
    return JSON({"data": run_public(run)}, status_code=202)


@router.post(
    "/v1/runs/{run_id}/retry",
    dependencies=[requires("run")],
    status_code=202,
    responses=responses("Run", 202, errors=(404, 409)),
    summary="Retry a failed or cancelled run as a new run, reusing its completed steps",
)
async def retry_run(run_id: str, account: AccountDep, services: ServicesDep) -> JSON:
    async with services.db.write() as conn:
        source = await get_run_or_404(conn, account, run_id)
        if source["status"] not in ("failed", "cancelled"):
            raise RunNotRetryable()
        await _runnable_workflow(conn, account, source["workflow_id"])
        steps = await store.get_steps(conn, run_id)
        completed = 0
        while completed < len(steps) and _completed(steps[completed]):
            completed += 1
        run = await transitions.derive_run(
            conn,
            source,
            steps,
            await store.get_tool_calls(conn, run_id),
            from_step=completed,
            run_input=source["input"],
            snapshot=await store.get_snapshot(conn, run_id),
            version=source["workflow_version"],
            resume=True,
        )
        await services.dispatcher.enqueue(conn, run["id"])
    services.dispatcher.submit(run["id"], account)
    return JSON({"data": run_public(run)}, status_code=202)


@router.post(
    "/v1/runs/{run_id}/fork",
    dependencies=[requires("run")],
    status_code=202,
    openapi_extra=body_of(ForkIn),
    responses=responses("Run", 202, errors=(400, 404, 409)),
    summary="Fork a run from a step: a new run that reuses the steps before it",
)
async def fork_run(
    run_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    raw = await request.body()
    async with services.db.write() as conn:
        source = await get_run_or_404(conn, account, run_id)
        body = validate(ForkIn, parse_json(raw))
        workflow = await workflow_store.get_workflow(conn, account, source["workflow_id"])
        if body.use_current_workflow and workflow is not None:
            snapshot = workflow_store.definition_of(workflow)
            version = workflow["version"]
        else:
            snapshot = await store.get_snapshot(conn, run_id)
            version = source["workflow_version"]
        steps = await store.get_steps(conn, run_id)
        _check_fork_point(body.from_step, steps, len(snapshot["crew"]))
        await _runnable_workflow(conn, account, source["workflow_id"], workflow)
        run = await transitions.derive_run(
            conn,
            source,
            steps,
            await store.get_tool_calls(conn, run_id),
            from_step=body.from_step,
            run_input=body.input if body.input is not None else source["input"],
            snapshot=snapshot,
            version=version,
        )
        await services.dispatcher.enqueue(conn, run["id"])
    services.dispatcher.submit(run["id"], account)
    return JSON({"data": run_public(run)}, status_code=202)


def _completed(step: dict[str, Any]) -> bool:
    return step["finished_at"] is not None and step["error"] is None


def _check_fork_point(from_step: int, steps: list[dict[str, Any]], crew_size: int) -> None:
    if from_step >= crew_size:
        raise InvalidRequest(
            f"from_step must be less than {crew_size}, the number of agents in the crew"
        )
    for order in range(from_step):
        if order >= len(steps) or not _completed(steps[order]):
            raise InvalidRequest(
                f"from_step {from_step}: step {order} of the source run did not complete "
                f"(the steps before from_step must have completed; fork from step {order} "
                "or an earlier one)"
            )


async def _runnable_workflow(
    conn: AsyncConnection, account: str, workflow_id: str, workflow: Any = ...
) -> None:
    """A retry or a fork is a new run: like a trigger, it needs an active workflow."""
    if workflow is ...:
        workflow = await workflow_store.get_workflow(conn, account, workflow_id)
    if workflow is None:
        raise WorkflowDeleted()
    if workflow["status"] == "paused":
        raise WorkflowPaused()

"""The OpenAPI document: request bodies, the `{"data": ...}` responses and the error envelope.

Routes parse their bodies themselves (so a 404 comes before a 400, as the reference orders its
checks), which hides the bodies from FastAPI's generator; `body_of` and `responses` put them
back, and `install_openapi` adds the schemas below to the document's components. A test checks
the document against real responses.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from loopllama.schemas.runs import ForkIn, RespondIn, RunCreate
from loopllama.schemas.workflows import (
    CustomToolIn,
    HumanInTheLoopIn,
    WorkflowCreate,
    WorkflowUpdate,
)

REF = "#/components/schemas/{model}"


class Error(BaseModel):
    error: str


class Agent(BaseModel):
    role: str
    systemPrompt: str
    model: str | None = None
    tools: list[str] | None = None


class Workflow(BaseModel):
    id: str
    name: str
    description: str | None
    status: Literal["active", "paused"]
    model: str
    crew: list[Agent]
    human_in_the_loop: HumanInTheLoopIn | None
    tools: list[CustomToolIn]
    max_run_seconds: int | None
    max_cost_usd: float | None
    max_tokens: int | None
    version: int
    locked: bool
    created_at: str
    updated_at: str | None = None


class WorkflowVersion(BaseModel):
    version: int
    model: str
    crew: list[Agent]
    human_in_the_loop: HumanInTheLoopIn | None
    tools: list[CustomToolIn]
    max_run_seconds: int | None
    max_cost_usd: float | None
    max_tokens: int | None
    created_at: str


class Pending(BaseModel):
    kind: Literal["input", "approval"]
    prompt: str
    tool: str | None = None
    tool_input: dict[str, Any] | None = None
    expires_at: str | None = None


class ToolCall(BaseModel):
    id: str
    name: str
    input: dict[str, Any]
    status: str
    result: str | None
    is_error: bool
    started_at: str | None
    finished_at: str | None


class Step(BaseModel):
    id: str
    order: int
    role: str
    model: str
    input: str
    output: str | None
    error: str | None
    tokens_in: int
    tokens_out: int
    started_at: str | None
    finished_at: str | None
    cost_usd: float | None
    forked: bool
    tool_calls: list[ToolCall]


class ForkedFrom(BaseModel):
    run_id: str
    from_step: int


class Run(BaseModel):
    id: str
    workflow_id: str
    status: Literal["queued", "running", "waiting_input", "completed", "failed", "cancelled"]
    input: str
    output: str | None
    error: str | None
    total_steps: int
    tokens_in: int
    tokens_out: int
    started_at: str | None
    finished_at: str | None
    created_at: str
    pending: Pending | None
    workflow_version: int | None
    forked_from: ForkedFrom | None
    cost_usd: float | None


class UsageRow(BaseModel):
    date: str
    workflow_id: str
    model: str
    runs: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None


class RunWithSteps(Run):
    steps: list[Step]


class RespondAcceptedData(BaseModel):
    id: str
    status: Literal["running"]


def _envelope(
    name: str, inner: type[BaseModel], many: bool = False, paged: bool = False
) -> type[BaseModel]:
    annotation = list[inner] if many or paged else inner  # type: ignore[valid-type]
    annotations: dict[str, Any] = {"data": annotation}
    if paged:
        annotations["has_more"] = bool
    return type(name, (BaseModel,), {"__annotations__": annotations})


ENVELOPES: dict[str, type[BaseModel]] = {
    "Workflow": _envelope("WorkflowResponse", Workflow),
    "WorkflowList": _envelope("WorkflowListResponse", Workflow, many=True),
    "Run": _envelope("RunResponse", Run),
    "RunList": _envelope("RunListResponse", Run, many=True),
    "RunPage": _envelope("RunPageResponse", Run, paged=True),
    "WorkflowVersion": _envelope("WorkflowVersionResponse", WorkflowVersion),
    "WorkflowVersionList": _envelope("WorkflowVersionListResponse", WorkflowVersion, many=True),
    "RunWithSteps": _envelope("RunWithStepsResponse", RunWithSteps),
    "RespondAccepted": _envelope("RespondAcceptedResponse", RespondAcceptedData),
    "UsageList": _envelope("UsageListResponse", UsageRow, many=True),
}
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    WorkflowCreate,
    WorkflowUpdate,
    RunCreate,
    RespondIn,
    ForkIn,
)

_ERROR_TEXT = {
    400: "Validation error, malformed JSON, or an action that does not match the pause",
    401: "Missing Bearer token / Invalid token format / Invalid API key",
    403: "Workflow is locked",
    404: "Not found (missing, or owned by another account)",
    409: "Conflict with the resource's state",
    422: "Idempotency-Key was already used with a different request",
    413: "Request body too large",
    429: "Rate limit exceeded (see Retry-After)",
}


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def responses(
    envelope: str | None, status: int = 200, errors: tuple[int, ...] = (404,)
) -> dict[int | str, dict[str, Any]]:
    error = {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}
    result: dict[int | str, dict[str, Any]] = {
        code: {"description": _ERROR_TEXT[code], "content": error}
        for code in (401, *errors, 413, 429)
    }
    if envelope is None:
        result[status] = {"description": "No content"}
    else:
        schema = {"$ref": REF.format(model=ENVELOPES[envelope].__name__)}
        result[status] = {
            "description": "Success",
            "content": {"application/json": {"schema": schema}},
        }
    return result


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for model in (Error, *ENVELOPES.values(), *REQUEST_MODELS):
            schema = model.model_json_schema(ref_template=REF)
            components.update(schema.pop("$defs", {}))
            components[model.__name__] = schema
        for path in document["paths"].values():
            for operation in path.values():
                # Our routes never answer FastAPI's default 422 (a 422 we declare stays).
                answers = operation.get("responses", {})
                if answers.get("422", {}).get("description") == "Validation Error":
                    del answers["422"]
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "ll_live_..."}
        }
        document["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]

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

from loopllama.schemas.runs import RespondIn, RunCreate
from loopllama.schemas.webhooks import WebhookCreate, WebhookUpdate
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
    created_at: str
    updated_at: str | None = None


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
    tool_calls: list[ToolCall]


class Run(BaseModel):
    id: str
    workflow_id: str
    status: Literal["queued", "running", "waiting_input", "completed", "failed"]
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


class RunWithSteps(Run):
    steps: list[Step]


class RespondAcceptedData(BaseModel):
    id: str
    status: Literal["running"]


class Event(BaseModel):
    """One entry of a run's event log (EXTENSIONS part 5); `data` depends on `type`."""

    id: int
    run_id: str
    type: Literal[
        "run.queued",
        "run.started",
        "step.started",
        "tool_call.updated",
        "step.completed",
        "step.failed",
        "run.waiting_input",
        "run.resumed",
        "run.completed",
        "run.failed",
        "run.cancelled",
    ]
    created_at: str
    data: dict[str, Any]


class EventListResponse(BaseModel):
    data: list[Event]
    has_more: bool


class Webhook(BaseModel):
    """A webhook endpoint (EXTENSIONS part 6); `secret` only on create and rotate_secret."""

    id: str
    url: str
    events: list[str]
    workflow_id: str | None
    description: str | None
    status: Literal["enabled", "disabled"]
    created_at: str
    updated_at: str


class WebhookWithSecret(Webhook):
    secret: str


class WebhookDelivery(BaseModel):
    id: str
    event_type: str
    run_id: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None


def _envelope(name: str, inner: type[BaseModel], many: bool = False) -> type[BaseModel]:
    annotation = list[inner] if many else inner  # type: ignore[valid-type]
    return type(name, (BaseModel,), {"__annotations__": {"data": annotation}})


ENVELOPES: dict[str, type[BaseModel]] = {
    "Workflow": _envelope("WorkflowResponse", Workflow),
    "WorkflowList": _envelope("WorkflowListResponse", Workflow, many=True),
    "Run": _envelope("RunResponse", Run),
    "RunList": _envelope("RunListResponse", Run, many=True),
    "RunWithSteps": _envelope("RunWithStepsResponse", RunWithSteps),
    "RespondAccepted": _envelope("RespondAcceptedResponse", RespondAcceptedData),
    "EventList": EventListResponse,
    "Webhook": _envelope("WebhookResponse", Webhook),
    "WebhookWithSecret": _envelope("WebhookWithSecretResponse", WebhookWithSecret),
    "WebhookList": _envelope("WebhookListResponse", Webhook, many=True),
    "WebhookDelivery": _envelope("WebhookDeliveryResponse", WebhookDelivery),
    "WebhookDeliveryList": _envelope("WebhookDeliveryListResponse", WebhookDelivery, many=True),
}
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    WorkflowCreate,
    WorkflowUpdate,
    RunCreate,
    RespondIn,
    WebhookCreate,
    WebhookUpdate,
)

_ERROR_TEXT = {
    400: "Validation error, malformed JSON, or an action that does not match the pause",
    401: "Missing Bearer token / Invalid token format / Invalid API key",
    404: "Not found (missing, or owned by another account)",
    409: "Conflict with the resource's state",
    413: "Request body too large",
}


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def responses(
    envelope: str | None, status: int = 200, errors: tuple[int, ...] = (404,)
) -> dict[int | str, dict[str, Any]]:
    error = {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}
    result: dict[int | str, dict[str, Any]] = {
        code: {"description": _ERROR_TEXT[code], "content": error} for code in (401, *errors, 413)
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


STREAM_DESCRIPTION = """Server-Sent Events: each durable event as `id: N`, `event: <type>`,
`data: <the event as JSON>`; text deltas as `event: step.delta` with
`data: {"step_id", "order", "text"}` and no id; `: keep-alive` comments while idle. Closed after
a terminal event."""


def stream_responses() -> dict[int | str, dict[str, Any]]:
    """The stream route: errors as JSON (before the stream starts), success as SSE."""
    result = responses(None, errors=(400, 404))
    result[200] = {
        "description": STREAM_DESCRIPTION,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
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
                # Our routes never answer FastAPI's default 422.
                operation.get("responses", {}).pop("422", None)
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "ll_live_..."}
        }
        document["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]

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
from pydantic import BaseModel, Field

from loopllama.permissions import SCOPES
from loopllama.schemas.keys import KeyCreate
from loopllama.schemas.runs import EventType, ForkIn, RespondIn, RunCreate
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


class Health(BaseModel):
    status: Literal["ok"]


class Key(BaseModel):
    id: str
    label: str | None
    scope: Literal["read", "run", "admin"]
    workflow_ids: list[str] | None
    hint: str
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class CreatedKeyData(Key):
    key: str


class Event(BaseModel):
    """One entry of a run's event log (EXTENSIONS part 5); `data` depends on `type`."""

    id: int
    run_id: str
    type: EventType
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


def _envelope(
    name: str, inner: type[BaseModel], many: bool = False, paged: bool = False
) -> type[BaseModel]:
    annotation = list[inner] if many or paged else inner  # type: ignore[valid-type]
    annotations: dict[str, Any] = {"data": annotation}
    if paged:
        annotations["has_more"] = bool
    return type(name, (BaseModel,), {"__annotations__": annotations})


class WorkflowPageResponse(BaseModel):
    data: list[Workflow]
    has_more: bool = Field(
        default=False, description="Only with `limit` or `after`: more workflows follow."
    )


ENVELOPES: dict[str, type[BaseModel]] = {
    "Workflow": _envelope("WorkflowResponse", Workflow),
    "WorkflowList": WorkflowPageResponse,
    "Run": _envelope("RunResponse", Run),
    "RunList": _envelope("RunListResponse", Run, many=True),
    "RunPage": _envelope("RunPageResponse", Run, paged=True),
    "WorkflowVersion": _envelope("WorkflowVersionResponse", WorkflowVersion),
    "WorkflowVersionList": _envelope("WorkflowVersionListResponse", WorkflowVersion, many=True),
    "RunWithSteps": _envelope("RunWithStepsResponse", RunWithSteps),
    "RespondAccepted": _envelope("RespondAcceptedResponse", RespondAcceptedData),
    "Health": _envelope("HealthResponse", Health),
    "Key": _envelope("KeyResponse", Key),
    "KeyList": _envelope("KeyListResponse", Key, many=True),
    "CreatedKey": _envelope("CreatedKeyResponse", CreatedKeyData),
    "EventList": EventListResponse,
    "Webhook": _envelope("WebhookResponse", Webhook),
    "WebhookWithSecret": _envelope("WebhookWithSecretResponse", WebhookWithSecret),
    "WebhookList": _envelope("WebhookListResponse", Webhook, many=True),
    "WebhookDelivery": _envelope("WebhookDeliveryResponse", WebhookDelivery),
    "WebhookDeliveryList": _envelope("WebhookDeliveryListResponse", WebhookDelivery, many=True),
    "UsageList": _envelope("UsageListResponse", UsageRow, many=True),
}
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    WorkflowCreate,
    WorkflowUpdate,
    RunCreate,
    RespondIn,
    KeyCreate,
    ForkIn,
    WebhookCreate,
    WebhookUpdate,
)

_ERROR_TEXT = {
    400: "Validation error, malformed JSON, or an action that does not match the pause",
    401: "Missing Bearer token / Invalid token format / Invalid API key (unknown, revoked or "
    "expired)",
    403: "Insufficient permissions (the key's scope, or its workflow limit), or Workflow is locked",
    404: "Not found (missing, or owned by another account)",
    409: "Conflict with the resource's state",
    422: "Idempotency-Key was already used with a different request",
    413: "Request body too large",
    429: "Rate limit exceeded (see Retry-After)",
}


# Request examples shown by /docs; a test sends each one to the API and expects it accepted.
EXAMPLES: dict[str, Any] = {
    "WorkflowCreate": {
        "name": "Launch plan",
        "description": "A planner drafts, a writer polishes",
        "model": "claude-sonnet-4-6",
        "crew": [
            {"role": "planner", "systemPrompt": "Break the request into a short plan."},
            {"role": "writer", "systemPrompt": "Turn the plan into a clear announcement."},
        ],
    },
    "WorkflowUpdate": {"status": "paused"},
    "RunCreate": {"input": "Plan the launch of our new llama-themed coffee mug"},
    "RespondIn": {"action": "input", "input": "Target the European market first"},
}
_ERROR_EXAMPLES = {
    400: "Required",
    401: "Invalid API key",
    403: "Insufficient permissions",
    404: "Not found",
    409: "Workflow is paused",
    413: "Request body too large",
    422: "Idempotency-Key was already used with a different request",
    429: "Rate limit exceeded",
}


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": {"$ref": REF.format(model=model.__name__)}}
    if model.__name__ in EXAMPLES:
        content["example"] = EXAMPLES[model.__name__]
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def responses(
    envelope: str | None, status: int = 200, errors: tuple[int, ...] = (404,)
) -> dict[int | str, dict[str, Any]]:
    error_schema = {"$ref": REF.format(model="Error")}
    result: dict[int | str, dict[str, Any]] = {
        code: {
            "description": _ERROR_TEXT[code],
            "content": {
                "application/json": {
                    "schema": error_schema,
                    "example": {"error": _ERROR_EXAMPLES[code]},
                }
            },
        }
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


NO_NUL = "^[^\\u0000]*$"


def _only_the_ref(response: dict[str, Any]) -> None:
    """FastAPI merges the response class's `{"type": "string"}` into our `$ref`; in OpenAPI
    3.1 both apply, which no JSON body satisfies. The `$ref` alone is the truth."""
    for media in (response.get("content") or {}).values():
        schema = media.get("schema") or {}
        if "$ref" in schema:
            media["schema"] = {"$ref": schema["$ref"]}


def _request_schema_names(components: dict[str, Any]) -> set[str]:
    """Request models and every schema they reference (the NUL rule is theirs)."""
    names: set[str] = set()
    pending = [model.__name__ for model in REQUEST_MODELS]
    while pending:
        name = pending.pop()
        if name in names:
            continue
        names.add(name)
        pending.extend(ref.rsplit("/", 1)[-1] for ref in _refs(components[name]))
    return names


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        own = [schema["$ref"]] if isinstance(schema.get("$ref"), str) else []
        return own + [ref for value in schema.values() for ref in _refs(value)]
    if isinstance(schema, list):
        return [ref for value in schema for ref in _refs(value)]
    return []


def _no_nul(schema: Any) -> None:
    """Strings in request bodies may not hold NUL (PostgreSQL cannot store it; every backend
    refuses it alike): say so with a pattern wherever a string has none stricter."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
            schema["pattern"] = NO_NUL
        for value in schema.values():
            _no_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _no_nul(value)


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
                # Our routes never answer FastAPI's default 422 (a 422 we declare stays).
                answers = operation.get("responses", {})
                if answers.get("422", {}).get("description") == "Validation Error":
                    del answers["422"]
                for response in answers.values():
                    _only_the_ref(response)
        for name in _request_schema_names(components):
            _no_nul(components[name])
        _document_scopes(document)
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "ll_live_..."}
        }
        document["security"] = [{"bearer": []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _document_scopes(document: dict[str, Any]) -> None:
    """Each operation's scope (`requires(...)` in api/deps.py, which FastAPI lists as the
    operation's bearer requirement) also as `x-required-scope`, with the 403 it answers
    outside that scope. An operation whose requirement names no scope is left without."""
    error = {
        "application/json": {
            "schema": {"$ref": REF.format(model="Error")},
            "example": {"error": "Insufficient permissions"},
        }
    }
    for path in document["paths"].values():
        for operation in path.values():
            scopes = [s for req in operation.get("security", ()) for s in req.get("bearer", ())]
            if not scopes:
                continue
            scope = max(scopes, key=SCOPES.index)
            operation["x-required-scope"] = scope
            operation["security"] = [{"bearer": [scope]}]
            operation["responses"].setdefault(
                "403", {"description": _ERROR_TEXT[403], "content": error}
            )

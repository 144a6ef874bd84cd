"""Webhook endpoints and deliveries on the wire (EXTENSIONS part 6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loopllama.ids import iso
from loopllama.schemas.runs import EventType


def _url_shape(value: str) -> str:
    # The address rules need DNS; the route applies them (schemas stay free of I/O).
    from loopllama.engine.tools.ssrf import url_problem

    problem = url_problem(value)
    if problem is not None:
        raise ValueError(f"Invalid url: {problem}")
    return value


Url = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_url_shape)]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EventType.__args__))]
Description = Annotated[str, Field(max_length=500)] | None
WorkflowId = Annotated[str, Field(min_length=1, max_length=32)] | None


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class WebhookCreate(_Body):
    url: Url
    events: Events
    workflow_id: WorkflowId = None
    description: Description = None


class WebhookUpdate(_Body):
    url: Url = Field(default=None)  # type: ignore[assignment]
    events: Events = Field(default=None)  # type: ignore[assignment]
    workflow_id: WorkflowId = None
    description: Description = None
    status: Literal["enabled", "disabled"] = Field(default=None)  # type: ignore[assignment]


def endpoint_public(row: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    """The endpoint as the API shows it; the secret only when just created or rotated."""
    body = {
        "id": row["id"],
        "url": row["url"],
        "events": list(row["events"]),
        "workflow_id": row["workflow_id"],
        "description": row["description"],
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
    if with_secret:
        body["secret"] = row["secret"]
    return body


def delivery_public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_type": row["event_type"],
        "run_id": row["run_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "next_attempt_at": iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "created_at": iso(row["created_at"]),
        "delivered_at": iso(row["delivered_at"]),
    }

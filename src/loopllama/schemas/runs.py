"""Runs and steps on the wire: the trigger and respond bodies, and the objects returned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopllama.errors import InvalidRequest
from loopllama.ids import iso
from loopllama.limits import plausible_id
from loopllama.schemas.validation import query_int

# Keys of the stored `pending` that are for the engine only.
_PUBLIC_PENDING_KEYS = ("kind", "prompt", "tool", "tool_input", "expires_at")


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


RunInput = Annotated[str, Field(min_length=1, max_length=16000)]
# The durable types of the run event log (EXTENSIONS part 5), in lifecycle order.
EventType = Literal[
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

RUN_STATUSES = ("queued", "running", "waiting_input", "completed", "failed", "cancelled")


class RunCreate(_Body):
    input: RunInput
    # Pin a version of the workflow (part 8); omitted: the current one.
    version: Annotated[int, Field(ge=1)] = Field(default=None)  # type: ignore[assignment]


class ForkIn(_Body):
    from_step: Annotated[int, Field(ge=0)]
    input: RunInput = Field(default=None)  # type: ignore[assignment]
    use_current_workflow: bool = False


class RespondIn(_Body):
    # The document says what the route enforces: `input` is required with `action: input`.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"action": {"const": "input"}}},
            "then": {"required": ["input"]},
        }
    )

    action: Literal["input", "approve", "reject"]
    input: Annotated[str, Field(min_length=1, max_length=16000)] = Field(default=None)  # type: ignore[assignment]
    reason: Annotated[str, Field(max_length=2000)] | None = None


@dataclass(frozen=True, slots=True)
class RunListQuery:
    """The filters and cursor of the run lists (query parameters)."""

    workflow_id: str | None = None
    status: str | None = None
    limit: int = 50
    after: str | None = None


def run_list_query(params: Mapping[str, str], *, default_limit: int = 50) -> RunListQuery:
    """Parse `?workflow_id=&status=&limit=&after=`; a bad value is a 400 naming it."""
    limit = query_int(params.get("limit"), "limit", default=default_limit, minimum=1, maximum=100)
    status = params.get("status")
    if status is not None and status not in RUN_STATUSES:
        options = " | ".join(f"'{s}'" for s in RUN_STATUSES)
        raise InvalidRequest(
            f"Invalid 'status': Invalid enum value. Expected {options}, received '{status}'"
        )
    for name in ("after", "workflow_id"):
        value = params.get(name)
        if value is not None and not plausible_id(value):
            raise InvalidRequest(f"Invalid '{name}': not an id")
    return RunListQuery(
        workflow_id=params.get("workflow_id"),
        status=status,
        limit=limit,
        after=params.get("after"),
    )


def pending_public(pending: dict[str, Any] | None) -> dict[str, Any] | None:
    if not pending:
        return None
    return {key: pending[key] for key in _PUBLIC_PENDING_KEYS if key in pending}


def run_public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "workflow_id": row["workflow_id"],
        "status": row["status"],
        "input": row["input"],
        "output": row["output"],
        "error": row["error"],
        "total_steps": row["total_steps"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "created_at": iso(row["created_at"]),
        "pending": pending_public(row["pending"]),
        # Extensions (part 7 and 8): a client may ignore them.
        "workflow_version": row["workflow_version"],
        "forked_from": row["forked_from"],
        # Part 9: dollars, null when no step's model has a known price.
        "cost_usd": _dollars(row.get("cost_usd")),
    }


def tool_call_public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "input": row["input"],
        "status": row["status"],
        "result": row["result"],
        "is_error": bool(row["is_error"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def step_public(row: dict[str, Any], calls: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "id": row["id"],
        "order": row["order"],
        "role": row["role"],
        "model": row["model"],
        "input": row["input"],
        "output": row["output"],
        "error": row["error"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "cost_usd": _dollars(row.get("cost_usd")),
        "forked": bool(row["forked"]),  # copied from the source run by a retry or a fork
        # An extension: the tool calls the agent made in this step, in order.
        "tool_calls": [tool_call_public(call) for call in calls],
    }


def event_public(row: Any) -> dict[str, Any]:
    """A stored run event as the API shows it (EXTENSIONS part 5)."""
    return {
        "id": row.id,
        "run_id": row.run_id,
        "type": row.type,
        "created_at": iso(row.created_at),
        "data": row.data,
    }


def _dollars(value: float | None) -> float | None:
    # Floats summed call by call drift in the last digits; a micro-dollar is below any price.
    return None if value is None else round(value, 6)

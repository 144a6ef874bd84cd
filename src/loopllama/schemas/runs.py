"""Runs and steps on the wire: the trigger and respond bodies, and the objects returned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopllama.ids import iso

# Keys of the stored `pending` that are for the engine only.
_PUBLIC_PENDING_KEYS = ("kind", "prompt", "tool", "tool_input", "expires_at")


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RunCreate(_Body):
    input: Annotated[str, Field(min_length=1, max_length=16000)]


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

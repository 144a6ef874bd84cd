"""API keys on the wire: the create body and the key object (never the key after creation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loopllama.ids import iso
from loopllama.permissions import Scope

WorkflowId = Annotated[str, Field(min_length=1, max_length=32)]


class KeyCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    label: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    # Omitted: admin, like `loopllama keys create` (the caller is an admin key; a narrower
    # key cannot reach this route).
    scope: Scope = "admin"
    # Omitted or null: the creating key's own limit (every workflow for an unlimited key).
    workflow_ids: Annotated[list[WorkflowId], Field(min_length=1, max_length=100)] | None = None
    # ISO 8601 with a zone (`2027-01-01T00:00:00Z`); omitted or null: the creating key's expiry.
    expires_at: str | None = None

    @field_validator("expires_at")
    @classmethod
    def _future_instant(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value)
        return value

    def expiry(self) -> datetime | None:
        return None if self.expires_at is None else parse_instant(self.expires_at)


def parse_instant(value: str) -> datetime:
    """A future instant from ISO 8601 text with a zone (Z or an offset), as UTC."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("Invalid datetime") from None
    if instant.tzinfo is None:
        raise ValueError("Invalid datetime")
    instant = instant.astimezone(UTC)
    if instant <= datetime.now(UTC):
        raise ValueError("expires_at must be in the future")
    return instant


def key_public(row: dict[str, Any]) -> dict[str, Any]:
    ids = row["workflow_ids"]
    return {
        "id": row["id"],
        "label": row["label"],
        "scope": row["scope"],
        "workflow_ids": None if ids is None else sorted(ids),
        "hint": row["hint"],
        "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]),
        "last_used_at": iso(row["last_used_at"]),
        "revoked_at": iso(row["revoked_at"]),
    }

"""`GET /v1/usage` on the wire: the query (UTC days) and the rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from loopllama.errors import InvalidRequest

MAX_DAYS = 92
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: date  # first day, inclusive
    end: date  # last day, inclusive


def usage_query(params: Mapping[str, str], today: date | None = None) -> UsageQuery:
    """`?start=YYYY-MM-DD&end=YYYY-MM-DD`, both optional: the last 30 days (today included)
    by default; at most 92 days; a bad value is a 400 naming it."""
    today = today or datetime.now(UTC).date()
    end = _day(params, "end") or today
    start = _day(params, "start") or (end - timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise InvalidRequest("Invalid range: start must not be after end")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"Invalid range: at most {MAX_DAYS} days")
    return UsageQuery(start, end)


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"Invalid {name}: expected a date as YYYY-MM-DD") from None


def usage_public(row: Mapping[str, Any]) -> dict[str, Any]:
    cost = row["cost_usd"]
    return {
        "date": row["date"],
        "workflow_id": row["workflow_id"],
        "model": row["model"],
        "runs": row["runs"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "cost_usd": None if cost is None else round(cost, 6),
    }

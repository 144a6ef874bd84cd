"""`GET /v1/usage`: tokens and dollars per UTC day, workflow and model (EXTENSIONS part 9)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from loopllama.api.deps import AccountDep, ServicesDep, requires
from loopllama.api.errors import JSON
from loopllama.api.openapi import responses
from loopllama.permissions import workflow_limit
from loopllama.schemas.usage import usage_public, usage_query
from loopllama.store.usage import usage_rows

router = APIRouter(tags=["usage"])

_DAY = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


@router.get(
    "/v1/usage",
    dependencies=[requires("read")],
    responses=responses("UsageList", errors=(400,)),
    openapi_extra={
        "parameters": [
            {
                "name": "start",
                "in": "query",
                "required": False,
                "description": "First UTC day (YYYY-MM-DD); default: 29 days before end.",
                "schema": _DAY,
            },
            {
                "name": "end",
                "in": "query",
                "required": False,
                "description": "Last UTC day, included (YYYY-MM-DD); default: today. At most "
                "92 days from start.",
                "schema": _DAY,
            },
        ]
    },
    summary="Usage per day, workflow and model: runs, tokens and cost",
)
async def get_usage(request: Request, account: AccountDep, services: ServicesDep) -> JSON:
    query = usage_query(request.query_params)
    async with services.db.read() as conn:
        rows = await usage_rows(
            conn,
            account,
            query.start,
            query.end,
            sqlite=services.db.is_sqlite,
            only=workflow_limit(account),
        )
    return JSON({"data": [usage_public(row) for row in rows]})

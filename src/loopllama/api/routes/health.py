"""Liveness and readiness for load balancers and orchestrators (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from loopllama.api.deps import ServicesDep
from loopllama.api.errors import JSON
from loopllama.api.openapi import REF

router = APIRouter(tags=["health"])
HEALTH = REF.format(model="HealthResponse")


@router.get(
    "/healthz",
    summary="Liveness and database readiness",
    responses={
        200: {
            "description": "The API answers and its database is reachable",
            "content": {"application/json": {"schema": {"$ref": HEALTH}}},
        },
        503: {
            "description": "The database cannot be reached",
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model="Error")},
                    "example": {"error": "Service temporarily unavailable"},
                }
            },
        },
    },
    openapi_extra={"security": []},  # no authentication: load balancers call it
)
async def healthz(services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return JSON({"data": {"status": "ok"}})

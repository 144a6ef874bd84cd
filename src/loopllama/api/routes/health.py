"""Liveness and readiness for load balancers and orchestrators (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from loopllama.api.deps import ServicesDep
from loopllama.api.errors import JSON

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database readiness")
async def healthz(services: ServicesDep) -> JSON:
    async with services.db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return JSON({"data": {"status": "ok"}})

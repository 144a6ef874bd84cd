"""ASGI middleware of the API: one log-field scope per request (the account is added by
authentication) and the request-duration histogram, labelled by route template."""

from __future__ import annotations

import time
from typing import Any

from loopllama import telemetry
from loopllama.telemetry import fields


class RequestTelemetry:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if telemetry.active_metrics() is None:
            with fields.scope():
                await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app raises before answering
        start = time.perf_counter()

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with fields.scope():
                await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label: a scanner must not mint a series per URL.
            template = getattr(route, "path", None) or "unmatched"
            telemetry.http_request(scope["method"], template, status, time.perf_counter() - start)

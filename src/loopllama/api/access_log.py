"""One INFO line per request on logger `loopllama.access`, for operators:

    GET /v1/runs/{run_id} 200 2.4ms

The route is the template, not the path, so lines group by endpoint and carry no ids; a path
no route matches is logged as it came, quoted. Headers are never logged (no Authorization, no
tool secrets). Uvicorn's own access log stays off: it logs the raw path and client address.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("loopllama.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            where = getattr(route, "path", None) or repr(scope.get("path", "")[:200])
            elapsed = (time.perf_counter() - started) * 1000
            logger.info("%s %s %d %.1fms", scope["method"], where, status, elapsed)

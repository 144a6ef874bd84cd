"""The one error envelope, `{"error": message}`, for everything the server can answer.

Domain errors map to status codes in one table; framework errors (unknown route, wrong method,
bad JSON, body too large) and unexpected failures get the same shape. Details of a 500 go to
the log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopllama import errors
from loopllama.schemas.validation import first_message

log = logging.getLogger("loopllama.api")

STATUS_OF: list[tuple[type[errors.LoopLlamaError], int]] = [
    (errors.Unauthenticated, 401),
    (errors.NotFound, 404),
    (errors.InvalidRequest, 400),
    (errors.Forbidden, 403),
    (errors.Conflict, 409),
    (errors.IdempotencyMismatch, 422),
    (errors.RateLimited, 429),
    (errors.StoreUnavailable, 503),
]

MESSAGE_OF_STATUS = {404: "Not found", 405: "Method not allowed"}


class JSON(Response):
    """orjson-rendered JSON: several times faster than the standard library on run objects."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": message}, status_code=status, headers=headers)


class MalformedJSON(errors.InvalidRequest):
    message = "Malformed JSON body"


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""


class BodyLimit:
    """Refuse bodies over `max_bytes` (413), whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    # Not `async` (see PathGuard): it returns the app's awaitable rather than awaiting it.
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return error_response(413, "Request body too large")(scope, receive, send)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        return self.app(scope, limited_receive, send)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves on this path (Starlette's 405 names only the first
    route that matched the path, so `PUT /v1/workflows` said `Allow: GET`)."""
    methods: set[str] = set()
    probe = {**scope, "method": "\x00"}  # a method no route serves: a matching path is PARTIAL
    for route in _leaf_routes(app.router.routes):
        if route.matches(probe)[0] is Match.PARTIAL:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _leaf_routes(routes: Any) -> Iterator[Any]:
    # FastAPI >= 0.16x keeps included routers as one node whose routes it resolves lazily.
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _leaf_routes(candidates())
        else:
            yield route


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.LoopLlamaError)
    async def _domain(_request: Request, error: errors.LoopLlamaError) -> Response:
        status = next(code for kind, code in STATUS_OF if isinstance(error, kind))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "1"}
        if isinstance(error, errors.RateLimited):
            headers = {"Retry-After": str(error.retry_after)}
        return error_response(status, error.message, headers)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        message = MESSAGE_OF_STATUS.get(error.status_code, str(error.detail))
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            headers = {"Allow": ", ".join(allowed_methods(app, request.scope))}
        return error_response(error.status_code, message, headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _error: ClientDisconnect) -> Response:
        # The client left (or was cut off by the read deadline) mid-body: nobody to answer.
        # Debug only: a flood of slow clients must not become a flood of log lines.
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> Response:
        issues = [dict(e) for e in error.errors()]
        message = first_message(issues)
        where = issues[0]["loc"]
        if len(where) > 1 and where[0] == "query":  # a parameter: say which, as the others do
            message = f"Invalid '{where[1]}': {message}"
        return error_response(400, message)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, _error: BodyTooLarge) -> Response:
        return error_response(413, "Request body too large")

    async def _unavailable(request: Request, error: Exception) -> Response:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, error)
        return error_response(503, errors.StoreUnavailable.message, {"Retry-After": "1"})

    for kind in (OperationalError, InterfaceError, PoolTimeout, ConnectionError):
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, error: DBAPIError) -> Response:
        if error.connection_invalidated:
            return await _unavailable(request, error)
        return await _internal(request, error)

    @app.exception_handler(Exception)
    async def _internal(request: Request, error: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return error_response(500, "Internal server error")

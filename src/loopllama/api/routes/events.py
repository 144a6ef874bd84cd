"""A run's event log: as JSON pages (`/events`) and as Server-Sent Events (`/stream`).

The stream replays the log from the database, then goes live: it subscribes to the process's
hub (engine/notify.py) BEFORE its first read, so nothing committed in between is missed, and
on each "committed up to N" it reads the new events from the log. Deltas come from the hub
only (they are never stored). It holds no database connection while it waits.

Frames are encoded by sse-starlette's `ServerSentEvent` and sent by `EventStreamResponse`
(api/sse.py), which keeps a thousand idle streams cheap. The keep-alive comment is ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sse_starlette import ServerSentEvent

from loopllama.api.deps import AccountDep, ServicesDep, get_run_or_404, requires
from loopllama.api.errors import JSON
from loopllama.api.openapi import responses, stream_responses
from loopllama.api.services import Services
from loopllama.api.sse import EventStreamResponse
from loopllama.engine.events import TERMINAL_TYPES
from loopllama.engine.notify import Delta
from loopllama.errors import InvalidRequest
from loopllama.schemas.runs import event_public
from loopllama.schemas.validation import query_int
from loopllama.store import runs as store

router = APIRouter(tags=["runs"])

MAX_EVENT_ID = 2**31 - 1
REPLAY_PAGE = 500
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

_AFTER = {
    "name": "after",
    "in": "query",
    "required": False,
    "description": "Start after this event id (default 0: from the first event).",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID, "default": 0},
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
}
_LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "What a reconnecting EventSource sends: start after this event id "
    "(takes precedence over `after`).",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID},
}


@router.get(
    "/v1/runs/{run_id}/events",
    dependencies=[requires("read")],
    responses=responses("EventList", errors=(400, 404)),
    openapi_extra={"parameters": [_AFTER, _LIMIT]},
    summary="List a run's events (the durable log), oldest first",
)
async def list_events(
    run_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> JSON:
    """`?after=N` (default 0) returns the events with `id > N`; `?limit=` 1-1000 (100)."""
    query = request.query_params
    async with services.db.read() as conn:
        await get_run_or_404(conn, account, run_id)
        after = query_int(query.get("after"), "after", default=0, minimum=0, maximum=MAX_EVENT_ID)
        limit = query_int(query.get("limit"), "limit", default=100, minimum=1, maximum=1000)
        rows = await store.get_events(conn, run_id, after, limit + 1)
    return JSON(
        {"data": [event_public(row) for row in rows[:limit]], "has_more": len(rows) > limit}
    )


@router.get(
    "/v1/runs/{run_id}/stream",
    dependencies=[requires("read")],
    responses=stream_responses(),
    openapi_extra={"parameters": [_AFTER, _LAST_EVENT_ID]},
    response_class=EventStreamResponse,
    summary="Stream a run's events (Server-Sent Events): replay, then live, with text deltas",
)
async def stream_events(
    run_id: str, request: Request, account: AccountDep, services: ServicesDep
) -> Any:
    """Starts after `Last-Event-ID` (a reconnecting client) or `?after=N`, else at event 1.
    Closes after a terminal event; a paused run's stream stays open."""
    async with services.db.read() as conn:
        run = await get_run_or_404(conn, account, run_id)
    after = _start_after(request)
    return EventStreamResponse(
        _frames(services, run_id, after, ended=run["status"] in TERMINAL_STATUSES),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _start_after(request: Request) -> int:
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        try:
            value = int(header.strip())
        except ValueError:
            raise InvalidRequest("Invalid Last-Event-ID header") from None
        if not 0 <= value <= MAX_EVENT_ID:
            raise InvalidRequest("Invalid Last-Event-ID header")
        return value
    raw = request.query_params.get("after")
    return query_int(raw, "after", default=0, minimum=0, maximum=MAX_EVENT_ID)


async def _frames(
    services: Services, run_id: str, after: int, *, ended: bool
) -> AsyncIterator[bytes]:
    cursor = after
    keepalive = services.settings.server.stream_keepalive
    with services.hub.subscribe(run_id) as sub:
        while True:  # replay
            async with services.db.read() as conn:
                rows = await store.get_events(conn, run_id, cursor, REPLAY_PAGE)
            for row in rows:
                yield _durable(row)
                cursor = row.id
                if row.type in TERMINAL_TYPES:
                    return
            if len(rows) < REPLAY_PAGE:
                break
        del rows  # an idle stream keeps nothing it has sent
        if ended:  # finished before it had a log (a run older than the log): nothing to wait for
            return
        yield KEEP_ALIVE  # replayed: the client knows it is live now
        while not sub.overflowed:  # live
            items = await sub.wait(keepalive)
            if not items:
                yield KEEP_ALIVE
            for item in items:
                if isinstance(item, Delta):
                    yield _delta(item.data)
                    continue
                if item.last_id and item.last_id <= cursor:
                    continue  # already sent
                # Only up to the announced id: deltas announced after it come after it.
                upto = item.last_id or None
                async with services.db.read() as conn:
                    rows = await store.get_events(conn, run_id, cursor, MAX_EVENT_ID, upto)
                for row in rows:
                    yield _durable(row)
                    cursor = row.id
                    if row.type in TERMINAL_TYPES:
                        return
        # Too far behind (a client that does not read): it resumes with Last-Event-ID.


def _durable(row: Any) -> bytes:
    data = orjson.dumps(event_public(row)).decode()
    return ServerSentEvent(data=data, event=row.type, id=str(row.id), sep="\n").encode()


def _delta(data: dict[str, Any]) -> bytes:
    text = orjson.dumps(data).decode()
    return ServerSentEvent(data=text, event="step.delta", sep="\n").encode()


KEEP_ALIVE = ServerSentEvent(comment="keep-alive", sep="\n").encode()

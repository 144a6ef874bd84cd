"""A run's event log: as JSON pages (`/events`) and as Server-Sent Events (`/stream`).

The stream replays the log from the database, then goes live: it subscribes to the process's
hub (engine/notify.py) BEFORE its first read, so nothing committed in between is missed, and
on each "committed up to N" it reads the new events from the log. Deltas come from the hub
only (they are never stored). It holds no database connection while it waits.

Frames are encoded by sse-starlette's `ServerSentEvent` and sent by `EventStreamResponse`
(api/sse.py), which keeps a thousand idle streams cheap. The keep-alive comment is ours: it is
sent at the hub's idle tick, one timer for the whole process (`stream_keepalive` apart).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sse_starlette import ServerSentEvent

from loopllama.api.deps import AccountDep, ServicesDep, get_run_or_404, requires
from loopllama.api.errors import JSON
from loopllama.api.lean_route import LeanRoute
from loopllama.api.openapi import responses, stream_responses
from loopllama.api.services import Services
from loopllama.api.sse import EventStreamResponse
from loopllama.engine.events import TERMINAL_TYPES
from loopllama.engine.notify import Committed, Delta
from loopllama.errors import InvalidRequest
from loopllama.schemas.runs import event_public
from loopllama.schemas.validation import query_int
from loopllama.store import runs as store

# Lean (api/lean_route.py): a thousand idle streams would each keep FastAPI's request wrapper.
router = APIRouter(tags=["runs"], route_class=LeanRoute)

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
        _frames(services, run_id, after, ended=run["status"] in TERMINAL_STATUSES)
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
    """The stream's body: one chunk per database read or wake-up (the frames it holds).

    Between chunks it keeps its place in the log and its subscription, nothing else: no row,
    no connection, no frame it has sent (a thousand idle streams would each hold theirs).
    """
    with services.hub.subscribe(run_id) as sub:
        cursor = after
        while True:  # replay, a page at a time
            chunk, cursor, count, terminal = await _read(services, run_id, cursor, REPLAY_PAGE)
            if chunk:
                yield chunk
            if terminal or count < REPLAY_PAGE:
                break
        del chunk
        if terminal or ended:  # ended: finished before it had a log (a run older than the log)
            return
        yield KEEP_ALIVE  # replayed: the client knows it is live now
        while not sub.overflowed:  # live
            items = await sub.wait()
            if not items:  # the hub's idle tick (its period is the keep-alive setting)
                yield KEEP_ALIVE
                continue
            chunk, cursor, terminal = await _catch_up(services, run_id, cursor, items)
            del items
            if chunk:
                yield chunk
            del chunk
            if terminal:
                return
        # Too far behind (a client that does not read): it resumes with Last-Event-ID.


async def _read(
    services: Services, run_id: str, after: int, limit: int, upto: int | None = None
) -> tuple[bytes, int, int, bool]:
    """The log's events after `after` (up to `upto`), framed up to and including a terminal
    one: (frames, id of the last one framed, events read, whether it was terminal)."""
    async with services.db.read() as conn:
        rows = await store.get_events(conn, run_id, after, limit, upto)
    frames = []
    for row in rows:
        frames.append(_durable(row))
        after = row.id
        if row.type in TERMINAL_TYPES:
            return b"".join(frames), after, len(rows), True
    return b"".join(frames), after, len(rows), False


async def _catch_up(
    services: Services, run_id: str, cursor: int, items: list[Committed | Delta]
) -> tuple[bytes, int, bool]:
    """The frames a wake-up brings, in order: deltas as they came, and for each commit the
    events it announced that were not sent yet. (frames, new cursor, whether it ended)."""
    frames = []
    for item in items:
        if isinstance(item, Delta):
            frames.append(_delta(item.data))
            continue
        if item.last_id and item.last_id <= cursor:
            continue  # already sent
        # Only up to the announced id: deltas announced after it come after it.
        chunk, cursor, _, terminal = await _read(
            services, run_id, cursor, MAX_EVENT_ID, item.last_id or None
        )
        frames.append(chunk)
        if terminal:
            return b"".join(frames), cursor, True
    return b"".join(frames), cursor, False


def _durable(row: Any) -> bytes:
    data = orjson.dumps(event_public(row)).decode()
    return ServerSentEvent(data=data, event=row.type, id=str(row.id), sep="\n").encode()


def _delta(data: dict[str, Any]) -> bytes:
    text = orjson.dumps(data).decode()
    return ServerSentEvent(data=text, event="step.delta", sep="\n").encode()


KEEP_ALIVE = ServerSentEvent(comment="keep-alive", sep="\n").encode()

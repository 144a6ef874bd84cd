"""Live fan-out of run events and text deltas to the streams open in this process.

One seam, two backends, the same interface:

    hub.subscribe(run_id)            a `Subscription` (`with ... as sub:`): `await sub.wait()`
                                     hands back what happened since the last call ([] at the
                                     hub's idle tick, when nothing did)
    hub.publish_delta(run_id, data)  an ephemeral `step.delta` (never stored), from the engine

A subscription receives two kinds of item: `Committed(last_id)`, "the run's log now reaches
`last_id`" (the stream then reads the new events from the database, so a wake-up can never be
ahead of what a reader sees), and `Delta(data)`.

- `LocalHub` (SQLite: one process runs the engine and serves the streams): commits are reported
  by the database after each write transaction (`Database.on_commit`), deltas are handed over
  in memory.
- `PostgresHub`: commits arrive by `LISTEN loopllama_events` (a trigger NOTIFYs at commit; see
  migration 0004) and deltas by `LISTEN loopllama_deltas`, on ONE connection per process shared
  by every stream, opened on the first subscription. Deltas are published by a background task
  on its own connection, batched: consecutive deltas of one step merge into one notification,
  cut below PostgreSQL's 8,000-byte payload limit. A lost listener connection is re-opened and
  every subscriber is woken to re-read the log, so no durable event is missed.

A subscriber that falls too far behind (`MAX_BACKLOG` items) is marked `overflowed`: its stream
ends and the client resumes with `Last-Event-ID`, losing no durable event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "loopllama_events"
DELTAS_CHANNEL = "loopllama_deltas"
MAX_PAYLOAD = 7000  # bytes of delta text per NOTIFY; PostgreSQL refuses payloads over 8000
MAX_BACKLOG = 10_000
FLUSH_TIMEOUT = 2.0  # seconds an engine waits for its deltas to leave before going on


@dataclass(frozen=True, slots=True)
class Committed:
    last_id: int


@dataclass(frozen=True, slots=True)
class Delta:
    data: dict[str, Any]  # {"step_id", "order", "text"}


class Subscription:
    """What one stream is told about one run; a context manager that ends the subscription.

    A thousand idle streams hold a thousand of these, so it is kept small: a list of what
    arrived, and a future only while someone waits (no queue, no Event, no timer of its own).
    """

    __slots__ = ("_hub", "_items", "_waiter", "overflowed", "run_id")

    def __init__(self, hub: Hub, run_id: str) -> None:
        self._hub = hub
        self.run_id = run_id
        self._items: list[Committed | Delta] = []
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self._hub._unsubscribe(self)

    def put(self, item: Committed | Delta) -> None:
        if len(self._items) >= MAX_BACKLOG:
            self.overflowed = True
        else:
            self._items.append(item)
        self.wake()

    def wake(self) -> None:
        """End the current `wait` (with what arrived, possibly nothing)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def waiting_idle(self) -> bool:
        return self._waiter is not None and not self._items

    async def wait(self) -> list[Committed | Delta]:
        """The items received since the last call, waiting for one if there is none yet;
        [] when the hub's idle tick (`Hub.idle`) comes first."""
        if not self._items and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items, self._items = self._items, []
        return items


class Hub:
    """The in-process part every backend shares: who listens to which run.

    `idle` (seconds, optional): one timer for the whole process ticks at that period while
    anyone subscribes, and each tick ends the `wait` of every subscriber that has nothing, so
    a subscriber never waits longer than `idle` without hearing (a stream's keep-alive). One
    timer for all: a timer per waiting subscriber would cost each idle stream its own.
    """

    def __init__(self, idle: float | None = None) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self.opened = 0  # subscriptions ever made (tests, metrics)
        self.idle = idle
        self._ticker: asyncio.TimerHandle | None = None

    def subscribe(self, run_id: str) -> Subscription:
        """Use as `with hub.subscribe(run_id) as sub:`; leaving the block unsubscribes."""
        sub = Subscription(self, run_id)
        self.opened += 1
        self._subscribers.setdefault(run_id, set()).add(sub)
        if self.idle is not None and self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(self.idle, self._tick)
        self._on_subscribe()
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.run_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.run_id]

    def _tick(self) -> None:
        self._ticker = None
        if not self._subscribers:
            return  # the next subscription starts the clock again
        for subs in self._subscribers.values():
            for sub in subs:
                if sub.waiting_idle:
                    sub.wake()
        assert self.idle is not None
        self._ticker = asyncio.get_running_loop().call_later(self.idle, self._tick)

    def _stop_ticking(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def watching(self, run_id: str) -> bool:
        """Whether a stream may be following the run: the engine streams model calls only
        then (a streamed call costs the SDK's event parsing). Across processes nobody knows."""
        return True

    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def committed(self, run_id: str, last_id: int) -> None:
        for sub in self._subscribers.get(run_id, ()):
            sub.put(Committed(last_id))

    def delta(self, run_id: str, data: dict[str, Any]) -> None:
        for sub in self._subscribers.get(run_id, ()):
            sub.put(Delta(data))

    def wake_all(self) -> None:
        """Everyone re-reads the log (after a gap in what this hub could hear)."""
        for subs in self._subscribers.values():
            for sub in subs:
                sub.put(Committed(0))

    def on_commit(self, announced: list[tuple[str, int]]) -> bool:
        """Tell the streams of these runs; True when one was listening."""
        woke = False
        for run_id, last_id in announced:
            if run_id in self._subscribers:
                self.committed(run_id, last_id)
                woke = True
        return woke

    def publish_delta(self, run_id: str, data: dict[str, Any]) -> None:
        """Send a text delta of `run_id` to its streams: here, to this process's own (a hub
        that reaches other processes overrides it)."""
        self.delta(run_id, data)

    async def flush(self) -> None:
        """Return once every delta published so far is on its way to the streams, so that an
        event committed after this call reaches them after those deltas."""

    def _on_subscribe(self) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._stop_ticking()


class LocalHub(Hub):
    """SQLite: the engine and the streams share this process."""

    def watching(self, run_id: str) -> bool:
        return run_id in self._subscribers


class PostgresHub(Hub):
    """PostgreSQL: LISTEN/NOTIFY, so any process's streams see any process's runs."""

    def __init__(self, url: str, idle: float | None = None) -> None:
        super().__init__(idle)
        self._url = url  # a libpq URL (postgresql://...)
        self._listener: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._ready = asyncio.Event()  # outbox not empty
        self._queued = 0  # deltas published so far
        self._sent = 0  # ... of which handed to PostgreSQL (or dropped)
        self._progress = asyncio.Event()
        self._closed = False
        self.listening = asyncio.Event()  # set while LISTEN is active (tests, benchmarks)

    def publish_delta(self, run_id: str, data: dict[str, Any]) -> None:
        # Not handed to local subscribers directly: they hear it back through LISTEN, in
        # order with the commits around it.
        if self._closed:
            return
        self._outbox.append((run_id, data))
        self._queued += 1
        self._ready.set()
        if self._publisher is None:
            self._publisher = asyncio.get_running_loop().create_task(self._publish_forever())

    async def flush(self) -> None:
        # The step's end is committed right after this: its NOTIFY must not overtake the
        # step's deltas (different connections, and PostgreSQL orders by arrival).
        target = self._queued
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_TIMEOUT):
                while self._sent < target and not self._closed:
                    self._progress.clear()
                    await self._progress.wait()

    def _on_subscribe(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen_forever())

    async def start(self) -> None:
        """Open the listener now (API processes), so the first stream misses no delta; waits
        a few seconds for LISTEN to be in place (it keeps trying in the background)."""
        self._on_subscribe()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.listening.wait()

    async def stop(self) -> None:
        self._stop_ticking()
        self._closed = True
        for task in (self._listener, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # -- listening -------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        import psycopg

        delay = 0.1
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    await conn.execute(f"LISTEN {DELTAS_CHANNEL}")
                    self.listening.set()
                    self.wake_all()  # anything committed before LISTEN is read from the log
                    delay = 0.1
                    async for note in conn.notifies():
                        self._dispatch(note.channel, note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("event listener lost its connection (%s); reconnecting", error)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == EVENTS_CHANNEL:
            run_id, _, last_id = payload.rpartition(":")
            if run_id in self._subscribers:
                self.committed(run_id, int(last_id))
            return
        run_id, _, body = payload.partition(":")
        if run_id in self._subscribers:
            self.delta(run_id, orjson.loads(body))

    # -- publishing deltas -----------------------------------------------------------------

    async def _publish_forever(self) -> None:
        import psycopg

        conn: psycopg.AsyncConnection | None = None
        try:
            while not self._closed:
                await self._ready.wait()
                self._ready.clear()
                batch, self._outbox = self._outbox, []
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(
                            self._url, autocommit=True, connect_timeout=5
                        )
                    async with conn.pipeline():
                        for payload in _payloads(batch):
                            await conn.execute(
                                "SELECT pg_notify(%s, %s)", (DELTAS_CHANNEL, payload)
                            )
                except (psycopg.Error, OSError) as error:
                    # Deltas are ephemeral: drop this batch, never the run.
                    log.warning("could not publish %d text deltas (%s)", len(batch), error)
                    if conn is not None:
                        await _close_quietly(conn)
                    conn = None
                self._sent += len(batch)
                self._progress.set()
        finally:
            if conn is not None:
                await _close_quietly(conn)


async def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


def _payloads(batch: list[tuple[str, dict[str, Any]]]) -> Iterator[str]:
    """`run_id:{delta json}` notifications: consecutive deltas of a step merged, then cut so
    each payload stays under PostgreSQL's limit."""
    merged: list[tuple[str, dict[str, Any]]] = []
    for run_id, data in batch:
        if merged and merged[-1][0] == run_id and merged[-1][1]["step_id"] == data["step_id"]:
            last = merged[-1][1]
            merged[-1] = (run_id, {**last, "text": last["text"] + data["text"]})
        else:
            merged.append((run_id, data))
    for run_id, data in merged:
        text = data["text"]
        while True:
            piece, text = _cut(text)
            yield f"{run_id}:" + orjson.dumps({**data, "text": piece}).decode()
            if not text:
                break


def _cut(text: str) -> tuple[str, str]:
    """A head of at most MAX_PAYLOAD bytes once JSON-encoded, and the rest."""
    if len(orjson.dumps(text)) <= MAX_PAYLOAD:
        return text, ""
    size = MAX_PAYLOAD // 6  # the worst case of a JSON escape: \\uXXXX per character
    while len(orjson.dumps(text[: size * 2])) <= MAX_PAYLOAD and size * 2 < len(text):
        size *= 2
    return text[:size], text[size:]


def hub_for(db: Any, idle: float | None = None) -> Hub:
    """The hub that fits the database: in process on SQLite, LISTEN/NOTIFY on PostgreSQL.
    `idle`: the period of the idle tick (`Hub`), the streams' keep-alive."""
    if db.is_sqlite:
        hub: Hub = LocalHub(idle)
        db.on_commit = hub.on_commit
        return hub
    from loopllama.store.db import libpq_url

    return PostgresHub(libpq_url(db.url), idle)

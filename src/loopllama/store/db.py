"""Connections and transactions on SQLite (embedded default) or PostgreSQL.

`Database.write()` and `Database.read()` hand out a connection inside a transaction; the
queries in this package take that connection explicitly and `await` its `execute` / `scalar`.

PostgreSQL uses SQLAlchemy's async engine on psycopg 3. A pooled connection is checked with a
ping before use only when it sat idle for a while (`_ping_if_idle`): a connection that just
served a query is alive, and pinging it would add a round trip to every transaction. If one
is dead after all (the server restarted a moment ago), the statement fails as the database
being unavailable (503, or the engine's retry) and SQLAlchemy replaces the whole pool.

Two pools on PostgreSQL. A process that executes runs gives its engine connections of its own
(`open_engine_lane`; the dispatcher's tasks run inside `engine_lane()`), so a step's
transactions never queue behind hundreds of API requests for a connection: with 500 clients
polling, a run would otherwise wait its turn several times per step, finish later, and be polled
for longer. A transaction that finds every connection of its pool busy waits for one, up to
`POOL_TIMEOUT` seconds: a burst queues, while a database that is down fails at once (a refused or
timed-out connect, `connect_timeout`) and answers 503.

SQLite runs synchronously on the event loop, behind `_LoopConnection`, which offers the same
awaitable `execute` / `scalar`. A WAL commit with synchronous=NORMAL takes tens of microseconds,
while an async driver pays a thread hop for every cursor call (about ninety per engine step):
running SQLite in place is several times faster and keeps latency flat. Every write transaction
waits on an asyncio lock, then starts with `BEGIN IMMEDIATE`: SQLite has one writer, and
queueing writers on the event loop is fairer than SQLite's busy handler, whose sleeps show up
as multi-millisecond spikes. Another process writing the same file (the CLI creating a key) is
covered by `busy_timeout`; the embedded mode is otherwise one process per database file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """A PostgreSQL URL with the async driver (psycopg 3)."""
    return make_url(_normalize(url)).render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The URL with a synchronous driver (migrations, CLI)."""
    parsed = make_url(_normalize(url))
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.set(drivername="sqlite"))
    return parsed.render_as_string(hide_password=False)


def _normalize(url: str) -> str:
    # psycopg 3 serves both the async engine and the migrations on PostgreSQL.
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def libpq_url(url: str) -> str:
    """A plain `postgresql://` URL, as psycopg connects with it (the event listener)."""
    return (
        make_url(_normalize(url)).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def is_sqlite(url: str) -> bool:
    return make_url(_normalize(url)).get_backend_name() == "sqlite"


def configure_sqlite_connection(dbapi_connection: Any) -> None:
    """WAL for concurrent readers; NORMAL sync is durable across process crashes."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_dumps(value: Any) -> str:
    # Transcripts are written after every model call: orjson is ~10x faster than json.
    return orjson.dumps(value).decode()


class _LoopConnection:
    """A synchronous SQLite connection with the awaitable API of `AsyncConnection`.

    A write transaction's connection also collects `announce(run_id, last_event_id)` calls
    (engine/events.py), handed to `Database.on_commit` once the transaction has committed: on
    SQLite that is how live streams learn of new events (PostgreSQL uses NOTIFY).
    """

    __slots__ = ("announced", "outbox", "sync")

    def __init__(self, sync: Connection, announced: list[tuple[str, int]] | None = None) -> None:
        self.sync = sync
        self.announced = announced
        self.outbox = False

    def outbox_written(self) -> None:
        """Webhook deliveries were recorded (webhooks/outbox.py): wake the sender at commit."""
        self.outbox = True

    def announce(self, run_id: str, last_event_id: int) -> None:
        if self.announced is not None:
            self.announced.append((run_id, last_event_id))

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync.scalar(statement, parameters)


class Database:
    """The process's database engine and its two kinds of transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self._write_lock = asyncio.Lock()
        # SQLite: called with the (run_id, last_event_id) pairs a write committed.
        self.on_commit: Callable[[list[tuple[str, int]]], bool] | None = None
        # SQLite: called after a write that recorded webhook deliveries (the local scheduler).
        self.on_outbox: Callable[[], None] | None = None
        if self.is_sqlite:
            self.sqlite_engine: Engine = _sqlite_engine(url, pool_size)
            self._writer: Connection | None = None
        else:
            self.engine: AsyncEngine = _postgres_engine(url, pool_size, POOL_TIMEOUT)
            # The run engine's own pool, once `open_engine_lane` made it.
            self._engine_lane: AsyncEngine | None = None

    def open_engine_lane(self, pool_size: int) -> None:
        """Give the run engine of this process `pool_size` connections of its own (PostgreSQL;
        nothing on SQLite, where writes are serialized anyway). Transactions begun inside
        `engine_lane()` use them from then on. Idempotent."""
        if not self.is_sqlite and self._engine_lane is None:
            self._engine_lane = _postgres_engine(self.url, pool_size, ENGINE_POOL_TIMEOUT)

    @staticmethod
    @contextmanager
    def engine_lane() -> Iterator[None]:
        """Transactions begun in this block, and in the tasks created in it, use the engine's
        pool (if `open_engine_lane` made one). asyncio copies the context into a new task, so
        the tasks a dispatcher starts here, and theirs, stay in the lane."""
        token = _ENGINE_LANE.set(True)
        try:
            yield
        finally:
            _ENGINE_LANE.reset(token)

    def _pool(self) -> AsyncEngine:
        lane = self._engine_lane
        return lane if lane is not None and _ENGINE_LANE.get() else self.engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block exits cleanly."""
        if not self.is_sqlite:
            async with self._pool().begin() as conn:
                yield conn
            return
        async with self._write_lock:
            # Writes are serialized, so one connection serves them all: no pool checkout per
            # transaction. A failed transaction drops it; the next one opens a fresh one.
            if self._writer is None:
                self._writer = self.sqlite_engine.connect()
            announced: list[tuple[str, int]] = []
            conn = _LoopConnection(self._writer, announced)
            try:
                with self._writer.begin():
                    _begin_sqlite(self._writer, "BEGIN IMMEDIATE")
                    yield conn  # type: ignore[misc]
            except BaseException:
                self._writer.close()
                self._writer = None
                raise
        if announced and self.on_commit is not None and self.on_commit(announced):
            # The writer (often the engine) may not suspend before its next transaction: let
            # the streams it just woke send what was committed now.
            await asyncio.sleep(0)
        if conn.outbox and self.on_outbox is not None:
            self.on_outbox()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot of the data)."""
        if not self.is_sqlite:
            async with self._pool().connect() as conn, conn.begin():
                yield conn
            return
        with self.sqlite_engine.connect() as sync, sync.begin():
            _begin_sqlite(sync, "BEGIN")
            yield _LoopConnection(sync)  # type: ignore[misc]

    @asynccontextmanager
    async def query(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one single-statement read, outside any transaction.

        A statement is atomic on its own; on PostgreSQL this saves the BEGIN and COMMIT round
        trips of `read()` (the API key lookup of every request).
        """
        if not self.is_sqlite:
            async with self._pool().connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            return
        # No BEGIN and COMMIT either (SQLAlchemy's own begin is no statement on SQLite): one
        # SELECT reads a consistent snapshot on its own.
        with self.sqlite_engine.connect() as sync:
            yield _LoopConnection(sync)  # type: ignore[misc]

    async def dispose(self) -> None:
        if self.is_sqlite:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self.sqlite_engine.dispose()
        else:
            await self.engine.dispose()
            if self._engine_lane is not None:
                await self._engine_lane.dispose()
                self._engine_lane = None


# Seconds a transaction waits for a connection of its pool when all are busy. Long enough for
# a burst (500 requests at once) to queue rather than fail; a database that is down fails
# faster, at connect (`connect_timeout`).
POOL_TIMEOUT = 30.0
# The engine's steps wait longer: no client is waiting on them, and a step cut short by a pool
# timeout is handed back to the queue and its model call made again (seen with 440 runs in
# flight on a process starved of CPU).
ENGINE_POOL_TIMEOUT = 300.0
# Marks the run engine's transactions (see `Database.engine_lane`).
_ENGINE_LANE: ContextVar[bool] = ContextVar("loopllama_engine_lane", default=False)


def _postgres_engine(url: str, pool_size: int, pool_timeout: float) -> AsyncEngine:
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        # No overflow: an overflow connection is closed when it is returned, so a busy
        # process would open (PostgreSQL forks a backend) and close one per request.
        # Past `pool_size`, a transaction waits for a connection instead.
        max_overflow=0,
        pool_timeout=pool_timeout,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        # A server that is shutting down stops accepting connections but the kernel
        # still queues them: without a timeout a request would hang (psycopg's default
        # for async connects is 130 s) instead of answering 503.
        connect_args={"connect_timeout": 5},
    )
    _ping_if_idle(engine.sync_engine)
    return engine


PING_IF_IDLE_FOR = 1.0  # seconds


def _ping_if_idle(engine: Engine) -> None:
    """`pool_pre_ping`, for connections idle longer than `PING_IF_IDLE_FOR` only."""

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < PING_IF_IDLE_FOR:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool connects afresh and tries again
            raise exc.DisconnectionError() from error


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    engine = create_engine(
        sync_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"check_same_thread": False},
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN out of the driver's hands so we can choose IMMEDIATE for writes.
        dbapi_connection.isolation_level = None
        configure_sqlite_connection(dbapi_connection)

    return engine


def _begin_sqlite(sync: Connection, statement: str) -> None:
    """BEGIN (IMMEDIATE for writes) on the driver, inside SQLAlchemy's transaction block.

    SQLAlchemy's pysqlite recipe does this in a "begin" event listener, but any connection
    event makes SQLAlchemy dispatch four more (empty) events around every statement: about a
    tenth of its cost per statement. The driver runs the BEGIN; sqlite3 commits and rolls back
    what it sees open, so SQLAlchemy's COMMIT and ROLLBACK still end it.
    """
    try:  # on the driver: SQLAlchemy's execute path costs more than the BEGIN itself
        sync.connection.driver_connection.execute(statement)
    except sqlite3.Error as error:  # e.g. locked past busy_timeout: 503, as from SQLAlchemy
        raise exc.OperationalError(statement, None, error) from error

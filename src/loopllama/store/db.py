"""Connections and transactions on SQLite (embedded default) or PostgreSQL.

`Database.write()` and `Database.read()` hand out a connection inside a transaction; the
queries in this package take that connection explicitly.

On SQLite every write transaction starts with `BEGIN IMMEDIATE` and, within this process, waits
on an asyncio lock first: SQLite allows one writer, and queueing writers on the event loop is
both faster and fairer than letting them spin in SQLite's busy handler (whose sleeps show up
as multi-millisecond latency spikes). Reads run concurrently (WAL). Another process (the CLI
creating a key) is still covered by `busy_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """The URL with the async driver this project uses for its backend."""
    parsed = make_url(_normalize(url))
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    return parsed.render_as_string(hide_password=False)


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


class Database:
    """The process's database engine and its two kinds of transaction."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.engine: AsyncEngine = self._create_engine(pool_size)

    def _create_engine(self, pool_size: int) -> AsyncEngine:
        if not self.is_sqlite:
            return create_async_engine(
                async_url(self.url),
                pool_size=pool_size,
                max_overflow=pool_size * 2,
                pool_pre_ping=True,
                pool_timeout=10,
            )
        engine = create_async_engine(async_url(self.url), pool_size=pool_size, max_overflow=0)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take BEGIN out of the driver's hands so we can choose IMMEDIATE for writes.
            dbapi_connection.isolation_level = None
            configure_sqlite_connection(dbapi_connection)

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            write = conn.get_execution_options().get("loopllama_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block exits cleanly."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            conn = await conn.execution_options(loopllama_write=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot of the data)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()

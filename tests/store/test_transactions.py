"""The two kinds of transaction of `Database`, on both backends: a write is all or nothing and
holds SQLite's write lock from its first statement; a read on SQLite sees one snapshot."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from loopllama.store.db import Database

INSERT = text("INSERT INTO accounts (id, name, created_at) VALUES (:id, :id, CURRENT_TIMESTAMP)")
COUNT = text("SELECT count(*) FROM accounts WHERE id LIKE 'tx-%'")


@pytest.fixture
async def db(database_url: str):
    database = Database(database_url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


async def test_a_write_that_fails_leaves_nothing(db: Database):
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(INSERT, {"id": "tx-1"})
            await conn.execute(INSERT, {"id": "tx-2"})
            raise RuntimeError("after two inserts")
    async with db.read() as conn:
        assert await conn.scalar(COUNT) == 0
    async with db.write() as conn:  # the next write works, and commits
        await conn.execute(INSERT, {"id": "tx-3"})
    async with db.query() as conn:
        assert await conn.scalar(COUNT) == 1


# SQLite only: PostgreSQL reads at READ COMMITTED (a snapshot per statement), and locks rows,
# not the database.
@pytest.fixture
async def sqlite_db(tmp_path: Path, sqlite_template: Path):
    path = tmp_path / "loopllama.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}", pool_size=2)
    try:
        yield database, path
    finally:
        await database.dispose()


async def test_a_sqlite_read_sees_one_snapshot(sqlite_db: tuple[Database, Path]):
    db, _ = sqlite_db
    async with db.read() as conn:
        before = await conn.scalar(COUNT)
        async with db.write() as writer:  # commits while the read is open
            await writer.execute(INSERT, {"id": "tx-4"})
        assert await conn.scalar(COUNT) == before
    async with db.query() as conn:
        assert await conn.scalar(COUNT) == before + 1


async def test_sqlite_writes_take_the_write_lock_at_begin(sqlite_db: tuple[Database, Path]):
    db, path = sqlite_db
    other = sqlite3.connect(path, timeout=0)
    try:
        async with db.write() as conn:
            await conn.execute(text("SELECT 1"))  # no write yet: IMMEDIATE holds the lock anyway
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.rollback()
    finally:
        other.close()
